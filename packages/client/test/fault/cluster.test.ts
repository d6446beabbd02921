import { startStanCluster, streamingBinaryUnavailable } from "@stan-ts/testing";
import { describe, expect, it } from "vitest";
import { startFailoverTraffic } from "./failover.js";

const unavailable = streamingBinaryUnavailable();

describe("fault: 3-node nats-streaming-server cluster, leader killed (official binary)", () => {
  it("kill -9 the leader, restart it, kill the new leader: no acked message lost", {
    timeout: 90_000,
  }, async (ctx) => {
    ctx.skip(unavailable !== undefined, unavailable);
    await using cluster = await startStanCluster();
    const traffic = await startFailoverTraffic("cluster", cluster.clusterId, cluster.urls);
    try {
      await traffic.moreAcks(300);

      const first = await cluster.leader();
      const recover1 = await traffic.recoverFrom(() => first.kill());
      const second = await cluster.leader();
      expect(second.id).not.toBe(first.id);
      await traffic.moreAcks(300);

      await first.start(); // rejoins as a follower and catches up from the new leader
      expect(await cluster.leader()).toBe(second);
      await traffic.moreAcks(300);

      const recover2 = await traffic.recoverFrom(() => second.kill());
      const third = await cluster.leader();
      expect(third.id).not.toBe(second.id);
      await traffic.moreAcks(300);

      await traffic.finish(
        `recover=${recover1}ms,${recover2}ms leaders=${first.id}>${second.id}>${third.id} heals=${traffic.heals()}`,
      );
      for (const l of [traffic.durable, traffic.queue]) {
        expect(l.lostIds()).toEqual([]);
        expect(l.acked + l.failed).toBe(l.sent);
      }
    } finally {
      await traffic.close();
    }
  });
});
