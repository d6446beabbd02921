import { StartPosition } from "@stan-ts/proto";
import {
  type StreamingServerHandle,
  serverControlUnavailable,
  skipWithoutServerControl,
  streamingServer,
} from "@stan-ts/testing";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { RawClient, uid } from "./helpers.js";

/** Limits are checked with both stores (the file store counts 40 bytes more per message). */
const STORES = ["memory", "file"] as const;

describe.each(STORES)("%s store", (store) => {
  describe("channel limits", () => {
    let stan: StreamingServerHandle | undefined;
    let c: RawClient;
    beforeEach(skipWithoutServerControl); // the limits are the harness's server options
    beforeAll(async () => {
      if (serverControlUnavailable()) return;
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

  describe("maxBytes and maxAge", () => {
    beforeEach(skipWithoutServerControl); // the limits are the harness's server options
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
      // Memory stores expire on time; the Go server's file store expires from a background task
      // that runs about once a second, so 1..3 can be served for up to a second longer. Each
      // round publishes one message and replays from the first stored one, until 1..3 are gone.
      let last = 3;
      let replay: number[] = [];
      const deadline = Date.now() + 3000;
      for (;;) {
        expect((await c.publish("age", "after")).error).toBe("");
        last++;
        const s = await c.subscribe("age", { startPosition: StartPosition.First });
        await s.waitFor(1);
        const first = s.seqs()[0] ?? 0;
        if (first > 3) await s.waitFor(last - first + 1);
        replay = s.seqs();
        await s.unsubscribe();
        if (first > 3 || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 25)); // poll interval, not an event
      }
      // 1..3 expired; the messages published since got 4, 5, ...: the sequence continued
      const first = replay[0] ?? 0;
      expect(first).toBeGreaterThan(3);
      expect(replay).toEqual(Array.from({ length: last - first + 1 }, (_, i) => first + i));
      if (store === "memory") expect(replay).toEqual([4]); // memory stores expire on time
      await c.close();
    });
  });
});
