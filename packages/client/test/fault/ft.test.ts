import { startStanFtPair, streamingBinaryUnavailable } from "@stan-ts/testing";
import { describe, expect, it } from "vitest";
import { startFailoverTraffic } from "./failover.js";

const unavailable = streamingBinaryUnavailable();

describe("fault: fault-tolerant nats-streaming-server pair, active killed (official binary)", () => {
  it("kill -9 the active, restart it as standby, kill the new active: no acked message lost", {
    timeout: 90_000,
  }, async (ctx) => {
    ctx.skip(unavailable !== undefined, unavailable);
    await using pair = await startStanFtPair();
    const traffic = await startFailoverTraffic("ft", pair.clusterId, pair.urls);
    try {
      await traffic.moreAcks(300);

      const first = await pair.active();
      const recover1 = await traffic.recoverFrom(() => first.kill());
      const second = await pair.active();
      expect(second.id).not.toBe(first.id);
      await traffic.moreAcks(300);

      await first.start(); // the standby now
      expect(await pair.active()).toBe(second);
      await traffic.moreAcks(300);

      const recover2 = await traffic.recoverFrom(() => second.kill());
      expect(await pair.active()).toBe(first);
      await traffic.moreAcks(300);

      await traffic.finish(`recover=${recover1}ms,${recover2}ms heals=${traffic.heals()}`);
      for (const l of [traffic.durable, traffic.queue]) {
        expect(l.lostIds()).toEqual([]);
        expect(l.acked + l.failed).toBe(l.sent);
      }
    } finally {
      await traffic.close();
    }
  });
});
