import { StartPosition } from "@stan-ts/proto";
import { skipWithoutServerControl, streamingServer } from "@stan-ts/testing";
import { beforeEach, describe, expect, it } from "vitest";
import { dec, RawClient, type RawSub, STORES, uid, until, useServer } from "./helpers.js";

describe.each(STORES)("%s store", (store) => {
  const f = useServer({ store });

  describe("durable subscriptions", () => {
    it("close keeps the position and pending set; resume redelivers pending first", async () => {
      const ch = uid("dur.");
      await f.c.publishMany(ch, 3);
      const d = await f.c.subscribe(ch, { durableName: "d1", startPosition: StartPosition.First });
      await d.waitFor(3);
      d.ack(1);
      expect(await d.unsubscribe(true)).toBe("");
      await f.c.publishMany(ch, 2, "late");
      const oldAckInbox = d.ackInbox;
      const r = await f.c.subscribe(ch, {
        durableName: "d1",
        startPosition: StartPosition.First, // ignored on resume
      });
      expect(r.ackInbox).not.toBe(oldAckInbox);
      await r.waitFor(4);
      await f.barrier();
      expect(r.seqs()).toEqual([2, 3, 4, 5]);
      expect(r.received.map((m) => m.redelivered)).toEqual([true, true, false, false]);
      // an ack to the old ack inbox is lost; the new one works
      r.ack(2, oldAckInbox);
      for (const s of [3, 4, 5]) r.ack(s);
      expect(await r.unsubscribe(true)).toBe("");
      const r2 = await f.c.subscribe(ch, { durableName: "d1" });
      await r2.waitFor(1);
      await f.barrier();
      expect(r2.seqs()).toEqual([2]);
      r2.ack(2);
      // unsubscribe deletes the durable: the next one starts from its own start position
      expect(await r2.unsubscribe()).toBe("");
      const fresh = await f.c.subscribe(ch, {
        durableName: "d1",
        startPosition: StartPosition.First,
      });
      await fresh.waitFor(5);
      expect(fresh.received.every((m) => !m.redelivered)).toBe(true);
      await fresh.unsubscribe();
    });

    it("survives a connection close and is keyed by clientID", async () => {
      const ch = uid("durconn.");
      const id = uid();
      const a = await RawClient.connect(f.stan.url, f.stan.clusterId, id);
      const d = await a.subscribe(ch, { durableName: "dd" });
      await a.publishMany(ch, 2);
      await d.waitFor(2);
      d.ack(1);
      d.ack(2);
      await a.close();
      await f.c.publishMany(ch, 1);
      // another client ID with the same durable name is a different durable
      const other = await f.c.subscribe(ch, { durableName: "dd" });
      const b = await RawClient.connect(f.stan.url, f.stan.clusterId, id);
      const resumed = await b.subscribe(ch, { durableName: "dd" });
      await resumed.waitFor(1);
      await f.barrier(b);
      expect(resumed.seqs()).toEqual([3]);
      expect(other.seqs()).toEqual([]);
      await other.unsubscribe();
      await b.close();
    });
  });

  function union(...subs: RawSub[]): number[] {
    return subs.flatMap((s) => s.seqs()).sort((x, y) => x - y);
  }

  describe("queue groups", () => {
    it("gives each message to one member, round-robin when acks are quick", async () => {
      const ch = uid("q.");
      const a = await f.c.subscribe(ch, { qGroup: "g" });
      const b = await f.c.subscribe(ch, { qGroup: "g" });
      for (let i = 0; i < 10; i++) {
        await f.c.publish(ch, `m${i}`);
        await f.barrier();
        for (const s of [a, b]) for (const m of s.received) s.ack(m.sequence);
      }
      await f.barrier();
      expect(union(a, b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(a.seqs().length).toBe(5);
      expect(b.seqs().length).toBe(5);
      // a new member gets nothing from the past
      const late = await f.c.subscribe(ch, { qGroup: "g", startPosition: StartPosition.First });
      await f.barrier();
      expect(late.seqs()).toEqual([]);
      for (const s of [a, b, late]) await s.unsubscribe();
    });

    it("hands a leaving member's pending messages to the others (~100ms, redelivered)", async () => {
      const ch = uid("qh.");
      const a = await f.c.subscribe(ch, { qGroup: "g", maxInFlight: 100 });
      const b = await f.c.subscribe(ch, { qGroup: "g", maxInFlight: 100 });
      await f.c.publishMany(ch, 6);
      await f.barrier();
      expect(union(a, b)).toEqual([1, 2, 3, 4, 5, 6]);
      for (const m of b.received) b.ack(m.sequence);
      const aSeqs = a.seqs();
      expect(aSeqs.length).toBeGreaterThan(0);
      const t0 = Date.now();
      expect(await a.unsubscribe(true)).toBe("");
      const before = b.received.length;
      await b.waitFor(before + aSeqs.length, 3000);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(80);
      const moved = b.received.slice(before);
      expect(moved.map((m) => Number(m.sequence)).sort((x, y) => x - y)).toEqual(aSeqs);
      expect(moved.every((m) => m.redelivered && m.redeliveryCount === 1)).toBe(true);
      await b.unsubscribe();
    });

    it("durable group: the last member's close leaves a shadow the next member resumes", async () => {
      const ch = uid("dq.");
      const a = await f.c.subscribe(ch, { qGroup: "g", durableName: "dur", maxInFlight: 10 });
      // the non-durable group of the same name is a different group
      const plain = await f.c.subscribe(ch, { qGroup: "g" });
      await f.c.publishMany(ch, 3);
      await a.waitFor(3);
      await plain.waitFor(3);
      a.ack(1);
      expect(await a.unsubscribe(true)).toBe("");
      await f.c.publishMany(ch, 2, "late");
      const b = await f.c.subscribe(ch, { qGroup: "g", durableName: "dur", maxInFlight: 10 });
      await b.waitFor(4);
      await f.barrier();
      expect(b.seqs()).toEqual([2, 3, 4, 5]);
      expect(b.received.map((m) => m.redelivered)).toEqual([true, true, false, false]);
      for (const s of [2, 3, 4, 5]) b.ack(s);
      // unsubscribing the last member deletes the group
      expect(await b.unsubscribe()).toBe("");
      await f.c.publishMany(ch, 1);
      const fresh = await f.c.subscribe(ch, { qGroup: "g", durableName: "dur" });
      await f.c.publish(ch, "new");
      await fresh.waitFor(1);
      await f.barrier();
      expect(fresh.seqs()).toEqual([7]);
      expect(dec.decode(fresh.received[0]!.data)).toBe("new");
      await fresh.unsubscribe();
      await plain.unsubscribe();
    });

    it("a member leaving the durable group deletes only its own record", async () => {
      const ch = uid("dq2.");
      const a = await f.c.subscribe(ch, { qGroup: "w", durableName: "d" });
      const b = await f.c.subscribe(ch, { qGroup: "w", durableName: "d" });
      expect(await a.unsubscribe()).toBe("");
      await f.c.publishMany(ch, 2);
      await b.waitFor(2);
      expect(b.seqs()).toEqual([1, 2]);
      await b.unsubscribe();
    });
  });

  describe("failing heartbeats", () => {
    beforeEach(skipWithoutServerControl); // the heartbeat timings are the harness's server options
    it("queue messages move to a healthy member; plain subs wait", async () => {
      await using srv = await streamingServer({
        store,
        hbInterval: 300,
        hbTimeout: 100,
        hbFailCount: 1000,
      });
      const well = await RawClient.connect(srv.url, srv.clusterId, uid());
      const sick = await RawClient.connect(srv.url, srv.clusterId, uid(), { answerHb: false });
      const ch = uid("hbq.");
      // while the sick client is still healthy (its first heartbeat fails after ~400ms) it gets
      // the message: first member in the list, equal pending counts
      const qa = await sick.subscribe(ch, { qGroup: "g", ackWaitInSecs: 1 });
      const plain = await sick.subscribe(ch, { ackWaitInSecs: 1 });
      const qb = await well.subscribe(ch, { qGroup: "g", ackWaitInSecs: 1 });
      await well.publish(ch, "x");
      await qa.waitFor(1);
      await plain.waitFor(1);
      expect(qb.seqs()).toEqual([]);
      await until(() => sick.hbCount.n >= 1, 3000, "a heartbeat");
      // after ackWait, the sick member's message is redelivered to the healthy one
      await qb.waitFor(1, 3000);
      expect([qb.received[0]!.sequence, qb.received[0]!.redelivered]).toEqual([1n, true]);
      expect((await well.publish("barrier.chan", "b")).error).toBe("");
      expect(plain.received).toHaveLength(1);
      qb.ack(1);
      await well.close();
      await sick.close();
    });
  });
});
