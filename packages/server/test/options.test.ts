import { StartPosition } from "@stan-ts/proto";
import { skipWithoutServerControl, streamingServer } from "@stan-ts/testing";
import { beforeEach, describe, expect, it } from "vitest";
import { limitsResolver, subjectMatches } from "../src/limits.js";
import { RawClient, STORES, uid } from "./helpers.js";

const global = { maxMsgs: 100, maxBytes: 1000, maxAge: 0, maxSubsPerChannel: 10, maxInactivity: 0 };

describe("per-channel limits", () => {
  it("matches wildcards like NATS subjects", () => {
    expect(subjectMatches("a.*", "a.b")).toBe(true);
    expect(subjectMatches("a.*", "a.b.c")).toBe(false);
    expect(subjectMatches("a.>", "a.b.c")).toBe(true);
    expect(subjectMatches("a.>", "a")).toBe(false);
    expect(subjectMatches("a.b", "a.b")).toBe(true);
  });

  it("most specific wins, 0 inherits from wider entries, negative is unlimited", () => {
    const limits = limitsResolver(global, {
      ">": { maxAge: 5000 },
      "orders.>": { maxMsgs: 50, maxBytes: 500 },
      "orders.*": { maxMsgs: 20 },
      "orders.audit": { maxMsgs: -1, maxBytes: 0 },
    });
    expect(limits("other")).toEqual({ ...global, maxAge: 5000 });
    expect(limits("orders.x")).toEqual({ ...global, maxMsgs: 20, maxBytes: 500, maxAge: 5000 });
    expect(limits("orders.x.y")).toEqual({ ...global, maxMsgs: 50, maxBytes: 500, maxAge: 5000 });
    expect(limits("orders.audit")).toEqual({ ...global, maxMsgs: 0, maxBytes: 500, maxAge: 5000 });
    expect(() => limitsResolver({ ...global, maxMsgs: -1 })).toThrow("maxMsgs must be >= 0");
  });

  // binary mode: the harness writes the limits as store_limits.channels in a config file (-sc)
  it("applies to a running server", async (ctx) => {
    skipWithoutServerControl(ctx); // the limits are the harness's server options
    await using server = await streamingServer({
      channels: { "small.*": { maxMsgs: 2, maxSubsPerChannel: 1 } },
    });
    const c = await RawClient.connect(server.url, server.clusterId, uid());
    await c.publishMany("small.a", 4);
    await c.publishMany("big", 4);
    const s = await c.subscribe("small.a", { startPosition: StartPosition.First });
    await s.waitFor(2);
    expect(s.seqs()).toEqual([3, 4]);
    expect((await c.subRequest({ subject: "small.a" })).error).toBe(
      "too many subscriptions per channel",
    );
    const b = await c.subscribe("big", { startPosition: StartPosition.First });
    await b.waitFor(4);
    await c.close();
  });
});

describe.each(STORES)("%s store: maxInactivity", (store) => {
  beforeEach(skipWithoutServerControl); // maxInactivity is the harness's server option
  it("deletes an idle channel with its offline durables; online subs keep it", async () => {
    await using stan = await streamingServer({ store, maxInactivity: 300 });
    const c = await RawClient.connect(stan.url, stan.clusterId, uid());
    await c.publishMany("idle", 3);
    const d = await c.subscribe("idle", { durableName: "d", startPosition: StartPosition.First });
    await d.waitFor(3);
    expect(await d.unsubscribe(true)).toBe("");
    const kept = await c.subscribe("busy");
    await c.publishMany("busy", 1);
    // inactivity is about time: let it pass
    await new Promise((r) => setTimeout(r, 700));
    // re-created from scratch: sequences start again at 1, the durable is gone
    await c.publish("idle", "new");
    const again = await c.subscribe("idle", {
      durableName: "d",
      startPosition: StartPosition.First,
    });
    await again.waitFor(1);
    expect(again.seqs()).toEqual([1]);
    expect(again.received[0]!.redelivered).toBe(false);
    await c.publish("busy", "still");
    await kept.waitFor(2);
    expect(kept.seqs()).toEqual([1, 2]);
    await c.close();
  });
});

describe("replaceDurable", () => {
  beforeEach(skipWithoutServerControl); // replaceDurable is the harness's server option
  it("sub-closes the online durable and resumes it for the new request", async () => {
    await using server = await streamingServer({ replaceDurable: true });
    const c = await RawClient.connect(server.url, server.clusterId, uid());
    const first = await c.subscribe("rd", { durableName: "d" });
    await c.publishMany("rd", 2);
    await first.waitFor(2);
    const second = await c.subscribe("rd", { durableName: "d" });
    expect(second.ackInbox).not.toBe(first.ackInbox);
    await second.waitFor(2);
    expect(second.seqs()).toEqual([1, 2]);
    expect(second.received.every((m) => m.redelivered)).toBe(true);
    await c.close();
  });
});
