import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  HarnessError,
  processAlive,
  startStanCluster,
  startStanFtPair,
  streamingBinaryUnavailable,
} from "../src/index.js";

const unavailable = streamingBinaryUnavailable();

describe("cluster and FT pair harness", () => {
  it("without the official binary: a HarnessError that says how to get it", async () => {
    expect(streamingBinaryUnavailable("")).toMatch(/NATS_STREAMING_SERVER.*install-go-tools/);
    const bin = "/nonexistent/nats-streaming-server";
    await expect(startStanCluster({ bin })).rejects.toThrow(HarnessError);
    await expect(startStanFtPair({ bin })).rejects.toThrow(/nonexistent.*does not run/);
  });

  it("a cluster: one leader, the others follow; dispose stops every node and removes the store", async (ctx) => {
    ctx.skip(unavailable !== undefined, unavailable);
    const cluster = await startStanCluster({ clusterId: "harness" });
    const pids = cluster.nodes.map((n) => n.pid);
    let dir = "";
    try {
      dir = cluster.dir;
      const leader = await cluster.leader();
      const states = await Promise.all(cluster.nodes.map((n) => n.serverz()));
      expect(states.map((z) => z?.state)).toEqual(["CLUSTERED", "CLUSTERED", "CLUSTERED"]);
      expect(states.filter((z) => z?.role === "Leader").map((z) => z?.node_id)).toEqual([
        leader.id,
      ]);
      expect(states.every((z) => z?.cluster_id === "harness")).toBe(true);
      expect(() => cluster.isolate(leader)).toThrow(/partitionable: true/);
    } finally {
      await cluster[Symbol.asyncDispose]();
    }
    expect(pids.every((pid) => pid !== undefined && !processAlive(pid))).toBe(true);
    expect(cluster.nodes.every((n) => !n.running)).toBe(true);
    expect(existsSync(dir)).toBe(false);
  });

  it("an FT pair: the first node active, the second its standby, both reaching the active", async (ctx) => {
    ctx.skip(unavailable !== undefined, unavailable);
    await using pair = await startStanFtPair({ clusterId: "harness-ft", group: "g" });
    const active = await pair.active();
    expect(active).toBe(pair.node("a"));
    const states = await Promise.all(pair.nodes.map((n) => n.serverz()));
    expect(states.map((z) => z?.state)).toEqual(["FT_ACTIVE", "FT_STANDBY"]);
    expect(() => pair.node("z")).toThrow(/no node "z"/);
    expect(pair.urls).toEqual(pair.nodes.map((n) => n.url));
  });
});
