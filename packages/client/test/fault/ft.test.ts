import { startStanFtPair, streamingBinaryUnavailable } from "@stan-ts/testing";
import { describe, it } from "vitest";
import { expectNothingLost, killRestartKill, startFailoverTraffic } from "./failover.js";

const unavailable = streamingBinaryUnavailable();

describe("fault: fault-tolerant nats-streaming-server pair, active killed (official binary)", () => {
  it("kill -9 the active, restart it as standby, kill the new active: no acked message lost", {
    timeout: 90_000,
  }, async (ctx) => {
    ctx.skip(unavailable !== undefined, unavailable);
    await using pair = await startStanFtPair();
    const traffic = await startFailoverTraffic("ft", pair.clusterId, pair.urls);
    try {
      const { recover } = await killRestartKill(traffic, () => pair.active());
      await traffic.finish(`recover=${recover.join("ms,")}ms heals=${traffic.heals()}`);
      expectNothingLost(traffic);
    } finally {
      await traffic.close();
    }
  });
});
