import { StartPosition } from "@stan-ts/proto";
import { type StreamingServerHandle, streamingMode, streamingServer } from "@stan-ts/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RawClient, uid } from "./helpers.js";

/** Limits are checked with both stores (the file store counts 40 bytes more per message). */
const STORES = ["memory", "file"] as const;

describe.each(STORES)("%s store", (store) => {
  const external = streamingMode() === "external";

  describe.skipIf(external)("channel limits", () => {
    let stan: StreamingServerHandle;
    let c: RawClient;
    beforeAll(async () => {
      stan = await streamingServer({
        store,
        maxChannels: 3,
        maxSubsPerChannel: 2,
        maxMsgs: 5,
        maxBytes: 0,
        maxAge: 0,
      });
      c = await RawClient.connect(stan.url, stan.clusterId, uid());
    });
    afterAll(async () => {
      await c?.close();
      await stan?.[Symbol.asyncDispose]();
    });

    it("drops the oldest messages beyond maxMsgs; first sequence advances", async () => {
      await c.publishMany("lim.msgs", 8);
      const s = await c.subscribe("lim.msgs", { startPosition: StartPosition.First });
      await s.waitFor(5);
      expect(s.seqs()).toEqual([4, 5, 6, 7, 8]);
      const seq2 = await c.subscribe("lim.msgs", {
        startPosition: StartPosition.SequenceStart,
        startSequence: 2n,
      });
      await seq2.waitFor(5);
      expect(seq2.seqs()).toEqual([4, 5, 6, 7, 8]);
      // maxSubsPerChannel = 2
      expect((await c.subRequest({ subject: "lim.msgs" })).error).toBe(
        "too many subscriptions per channel",
      );
      await s.unsubscribe();
      const third = await c.subscribe("lim.msgs");
      await third.unsubscribe();
      await seq2.unsubscribe();
    });

    it("refuses a channel beyond maxChannels, for publish and subscribe", async () => {
      await c.publish("lim.c2", "x");
      await c.publish("lim.c3", "x");
      expect((await c.publish("lim.c4", "x")).error).toBe("too many channels");
      expect((await c.subRequest({ subject: "lim.c5" })).error).toBe("too many channels");
    });
  });

  describe.skipIf(external)("maxBytes and maxAge", () => {
    it("maxBytes drops the oldest and keeps the newest message even alone over the limit", async () => {
      await using stan = await streamingServer({ store, maxBytes: 290 });
      const c = await RawClient.connect(stan.url, stan.clusterId, uid());
      for (let i = 0; i < 4; i++) await c.publish("bytes", "x".repeat(80));
      const s = await c.subscribe("bytes", { startPosition: StartPosition.First });
      await s.waitFor(2);
      expect(s.seqs()).toEqual([3, 4]);
      await c.publish("bytes", "y".repeat(500));
      const s2 = await c.subscribe("bytes", { startPosition: StartPosition.First });
      await s2.waitFor(1);
      expect(s2.seqs()).toEqual([5]);
      await c.close();
    });

    it("maxAge expires messages; the sequence continues", async () => {
      await using stan = await streamingServer({ store, maxAge: 300 });
      const c = await RawClient.connect(stan.url, stan.clusterId, uid());
      await c.publishMany("age", 3);
      const young = await c.subscribe("age", { startPosition: StartPosition.First });
      await young.waitFor(3);
      await young.unsubscribe();
      // maxAge is about time: let it pass
      await new Promise((r) => setTimeout(r, 450));
      const s = await c.subscribe("age", { startPosition: StartPosition.First });
      await c.publish("age", "after");
      await s.waitFor(1);
      expect(s.seqs()).toEqual([4]);
      await c.close();
    });
  });
});
