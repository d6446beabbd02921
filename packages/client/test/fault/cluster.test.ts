import { startStanCluster, streamingBinaryUnavailable } from "@stan-ts/testing";
import { describe, it } from "vitest";
import { expectNothingLost, killRestartKill, startFailoverTraffic } from "./failover.js";

const unavailable = streamingBinaryUnavailable();

describe("fault: 3-node nats-streaming-server cluster, leader killed (official binary)", () => {
  it("kill -9 the leader, restart it, kill the new leader: no acked message lost", {
    timeout: 90_000,
  }, async (ctx) => {
    ctx.skip(unavailable !== undefined, unavailable);
    await using cluster = await startStanCluster();
    const traffic = await startFailoverTraffic("cluster", cluster.clusterId, cluster.urls);
    try {
      const { recover, heads } = await killRestartKill(traffic, () => cluster.leader());
      await traffic.finish(
        `recover=${recover.join("ms,")}ms leaders=${heads.map((n) => n.id).join(">")} heals=${traffic.heals()}`,
      );
      expectNothingLost(traffic);
    } finally {
      await traffic.close();
    }
  });

  it("partition: the leader cut off from its peers, then healed: no acked message lost", {
    timeout: 90_000,
  }, async (ctx) => {
    ctx.skip(unavailable !== undefined, unavailable);
    await using cluster = await startStanCluster({ partitionable: true });
    const cut = await cluster.leader();
    const [f1, f2] = cluster.nodes.filter((n) => n !== cut);
    // the durable, queue member 1 and publisher a on the side that is cut off; the rest not
    const placement = [cut.url, cut.url, f1!.url, cut.url, f2!.url] as const;
    const traffic = await startFailoverTraffic(
      "partition",
      cluster.clusterId,
      cluster.urls,
      placement,
    );
    try {
      await traffic.moreAcks(300);

      // b, on the majority's side, goes on once the two elect a leader of their own
      const majority = await traffic.recoverFrom(() => cluster.isolate(cut), { publisher: "b" });
      const next = await cluster.leader({ among: [f1!, f2!] });
      await traffic.moreAcks(300);

      // a, connected to the cut-off node, goes on once the routes are back
      const healed = await traffic.recoverFrom(() => cluster.heal(), { publisher: "a" });
      const after = await cluster.leader(); // all three agree again
      await traffic.moreAcks(300);

      await traffic.finish(
        `recover-majority=${majority}ms recover-after-heal=${healed}ms leaders=${cut.id}>${next.id}>${after.id} heals=${traffic.heals()}`,
      );
      expectNothingLost(traffic);
    } finally {
      await traffic.close();
    }
  });
});
