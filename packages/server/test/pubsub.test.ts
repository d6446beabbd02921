import {
  decode,
  encode,
  PubAckSchema,
  PubMsgSchema,
  StartPosition,
  SubscriptionResponseSchema,
} from "@stan-ts/proto";
import { beforeAll, describe, expect, it } from "vitest";
import { dec, RawClient, STORES, uid, useServer } from "./helpers.js";

describe.each(STORES)("%s store", (store) => {
  const f = useServer({ store });

  describe("publish", () => {
    it("stores with consecutive sequences, server timestamps and the PubMsg subject", async () => {
      const ch = uid("pub.");
      const sub = await f.c.subscribe(ch);
      const before = BigInt(Date.now()) * 1_000_000n;
      const a = await f.c.publish(ch, "one", { guid: "same-guid" });
      expect(a).toEqual({ guid: "same-guid", error: "" });
      // deliveries go out before the PubAck of their batch, on the same connection
      expect(sub.received).toHaveLength(1);
      // no deduplication: the same guid is stored twice
      expect((await f.c.publish(ch, "two", { guid: "same-guid" })).error).toBe("");
      // the NATS subject suffix is never compared with PubMsg.subject
      const r = await f.c.nc.request(
        `${f.c.resp.pubPrefix}.something.else`,
        encode(PubMsgSchema, {
          clientID: f.c.clientID,
          connID: f.c.connID,
          guid: "g3",
          subject: ch,
        }),
        { timeout: 3000 },
      );
      expect(decode(PubAckSchema, r.data)).toMatchObject({ guid: "g3", error: "" });
      const got = await sub.waitFor(3);
      expect(got.map((m) => Number(m.sequence))).toEqual([1, 2, 3]);
      expect(got.map((m) => dec.decode(m.data))).toEqual(["one", "two", ""]);
      for (const m of got) {
        expect(m.subject).toBe(ch);
        expect(m.redelivered).toBe(false);
        expect(m.redeliveryCount).toBe(0);
        expect(m.CRC32).toBe(0);
        expect(m.timestamp).toBeGreaterThanOrEqual(before - 1_000_000n);
      }
      expect(got[1]!.timestamp).toBeGreaterThanOrEqual(got[0]!.timestamp);
      expect(await sub.unsubscribe()).toBe("");
    });

    it("refuses invalid publishes with `stan: invalid publish request`", async () => {
      const invalid = "stan: invalid publish request";
      const raw = await f.c.nc.request(`${f.c.resp.pubPrefix}.x`, Uint8Array.of(0xff, 0xff), {
        timeout: 3000,
      });
      expect(decode(PubAckSchema, raw.data)).toMatchObject({ guid: "", error: invalid });
      expect((await f.c.publish("ok.chan", "x", { guid: "" })).error).toBe(invalid);
      for (const bad of [".a", "a.", "a..b", "a.*", "a.>", "a/b"]) {
        const r = await f.c.publish(bad, "x", { guid: "g", natsSubject: "bad" });
        expect(r, bad).toEqual({ guid: "g", error: invalid });
      }
      // unknown client, and a connID that is not registered (clientID is then ignored)
      expect(
        (await f.c.publish("ok.chan", "x", { clientID: "ghost", connID: new Uint8Array() })).error,
      ).toBe(invalid);
      expect((await f.c.publish("ok.chan", "x", { connID: Uint8Array.of(1, 2, 3) })).error).toBe(
        invalid,
      );
      // an empty connID falls back to the clientID
      expect((await f.c.publish("ok.chan", "x", { connID: new Uint8Array() })).error).toBe("");
    });

    it("refuses channel names differing only by case", async () => {
      const ch = uid("Case.");
      expect((await f.c.publish(ch, "x")).error).toBe("");
      const lower = ch.toLowerCase();
      expect((await f.c.publish(lower, "x")).error).toBe(
        `rejecting channel "${lower}" because channel "${ch}" alreay exists (different cases not allowed)`,
      );
    });
  });

  describe("subscribe validation", () => {
    it("returns the official error texts in order", async () => {
      const ch = uid("val.");
      const raw = await f.c.nc.request(f.c.resp.subRequests, Uint8Array.of(0xff, 0xff), {
        timeout: 3000,
      });
      expect(decode(SubscriptionResponseSchema, raw.data).error).toBe(
        "stan: invalid subscription request",
      );
      expect((await f.c.subRequest({ subject: ch, clientID: "" })).error).toBe(
        "stan: clientID missing",
      );
      expect((await f.c.subRequest({ subject: ch, ackWaitInSecs: 0 })).error).toBe(
        "stan: invalid ack wait time, should be >= 1s",
      );
      expect((await f.c.subRequest({ subject: ch, maxInFlight: 0 })).error).toBe(
        "stan: invalid MaxInflight, should be >= 1",
      );
      expect((await f.c.subRequest({ subject: ch, startPosition: 7 as StartPosition })).error).toBe(
        "stan: invalid start position",
      );
      for (const bad of ["", "a.*", "a..b", "a/b", ".a"]) {
        expect((await f.c.subRequest({ subject: bad })).error, bad).toBe("stan: invalid subject");
      }
      expect((await f.c.subRequest({ subject: ch, clientID: "ghost" })).error).toBe(
        "stan: unknown clientID",
      );
      expect((await f.c.subRequest({ subject: ch, qGroup: "g", durableName: "a:b" })).error).toBe(
        "stan: durable name of a durable queue subscriber can't contain the character ':'",
      );
      const d = await f.c.subscribe(ch, { durableName: "dur" });
      expect(
        (await f.c.subRequest({ subject: ch, durableName: "dur", inbox: "_INBOX.dup" })).error,
      ).toBe("stan: duplicate durable registration");
      expect(await d.unsubscribe()).toBe("");
    });

    it("unsubscribe and close errors", async () => {
      const ch = uid("unsub.");
      const other = await RawClient.connect(f.stan.url, f.stan.clusterId, uid());
      const sub = await f.c.subscribe(ch);
      const raw = await f.c.nc.request(f.c.resp.unsubRequests, Uint8Array.of(0xff, 0xff), {
        timeout: 3000,
      });
      expect(decode(SubscriptionResponseSchema, raw.data).error).toBe(
        "stan: invalid unsubscribe request",
      );
      expect(await f.c.unsub("no.such.channel", sub.ackInbox)).toBe("stan: unknown channel");
      expect(await f.c.unsub(ch, "_INBOX.nope")).toBe("stan: invalid subscription");
      expect(await f.c.unsub(ch, sub.ackInbox, false, other.clientID)).toBe(
        "stan: unknown clientID",
      );
      expect(await f.c.unsub(ch, sub.ackInbox, true, "ghost")).toBe("stan: unknown clientID");
      // the delivery inbox also identifies the subscription (f.stan.go's best-effort close)
      expect(await f.c.unsub(ch, sub.inbox, true)).toBe("");
      expect(await f.c.unsub(ch, sub.ackInbox)).toBe("stan: invalid subscription");
      await other.close();
    });
  });

  describe("start positions", () => {
    const ch = uid("start.");
    beforeAll(async () => {
      await f.c.publishMany(ch, 5);
    });

    const cases: Array<[string, Parameters<RawClient["subscribe"]>[1], number[]]> = [
      ["NewOnly", { startPosition: StartPosition.NewOnly }, [6]],
      ["LastReceived", { startPosition: StartPosition.LastReceived }, [5, 6]],
      ["First", { startPosition: StartPosition.First }, [1, 2, 3, 4, 5, 6]],
      [
        "SequenceStart 3",
        { startPosition: StartPosition.SequenceStart, startSequence: 3n },
        [3, 4, 5, 6],
      ],
      [
        "SequenceStart 0",
        { startPosition: StartPosition.SequenceStart, startSequence: 0n },
        [1, 2, 3, 4, 5, 6],
      ],
      [
        "SequenceStart past the end",
        { startPosition: StartPosition.SequenceStart, startSequence: 99n },
        [6],
      ],
      [
        "TimeDeltaStart 1h",
        { startPosition: StartPosition.TimeDeltaStart, startTimeDelta: 3_600_000_000_000n },
        [1, 2, 3, 4, 5, 6],
      ],
      [
        "TimeDeltaStart negative",
        { startPosition: StartPosition.TimeDeltaStart, startTimeDelta: -1_000_000_000n },
        [6],
      ],
    ];

    it("delivers from each start position, then new messages", async () => {
      const subs = [];
      for (const [, req] of cases) subs.push(await f.c.subscribe(ch, req));
      expect((await f.c.publish(ch, "m5")).error).toBe("");
      for (const [i, [name, , want]] of cases.entries()) {
        const sub = subs[i]!;
        await sub.waitFor(want.length);
        await f.barrier();
        expect(sub.seqs(), name).toEqual(want);
        expect(await sub.unsubscribe()).toBe("");
      }
    });

    it("TimeDeltaStart picks the first message at or after now - delta", async () => {
      const tch = uid("tds.");
      await f.c.publishMany(tch, 2, "old");
      await new Promise((r) => setTimeout(r, 300)); // a gap in server time between the batches
      const mark = Date.now();
      await f.c.publishMany(tch, 2, "new");
      const delta = BigInt(Date.now() - mark + 100) * 1_000_000n;
      const sub = await f.c.subscribe(tch, {
        startPosition: StartPosition.TimeDeltaStart,
        startTimeDelta: delta,
      });
      await sub.waitFor(2);
      await f.barrier();
      expect(sub.seqs()).toEqual([3, 4]);
      await sub.unsubscribe();
    });

    it("on an empty channel every start position waits for the first message", async () => {
      const ech = uid("empty.");
      const subs = [
        await f.c.subscribe(ech, { startPosition: StartPosition.LastReceived }),
        await f.c.subscribe(ech, { startPosition: StartPosition.First }),
        await f.c.subscribe(ech, { startPosition: StartPosition.SequenceStart, startSequence: 5n }),
        await f.c.subscribe(ech, {
          startPosition: StartPosition.TimeDeltaStart,
          startTimeDelta: 10n ** 12n,
        }),
      ];
      await f.c.publish(ech, "first");
      for (const s of subs) {
        await s.waitFor(1);
        expect(s.seqs()).toEqual([1]);
        await s.unsubscribe();
      }
    });
  });

  describe("flow control and redelivery", () => {
    it("stops at maxInFlight and resumes on ack", async () => {
      const ch = uid("mif.");
      await f.c.publishMany(ch, 10);
      const sub = await f.c.subscribe(ch, { startPosition: StartPosition.First, maxInFlight: 3 });
      await sub.waitFor(3);
      await f.barrier();
      expect(sub.seqs()).toEqual([1, 2, 3]);
      sub.ack(1);
      await sub.waitFor(4);
      await f.barrier();
      expect(sub.seqs()).toEqual([1, 2, 3, 4]);
      // a double ack and an ack for an unknown seq change nothing
      sub.ack(1);
      sub.ack(99);
      await f.barrier();
      expect(sub.seqs()).toHaveLength(4);
      for (const s of [2, 3, 4, 5, 6]) sub.ack(s);
      await sub.waitFor(9);
      await f.barrier();
      expect(sub.seqs()).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      await sub.unsubscribe();
    });

    it("redelivers unacked messages after ackWait with redelivered and a growing count", async () => {
      const ch = uid("redeliv.");
      const sub = await f.c.subscribe(ch, { ackWaitInSecs: 1 });
      const t0 = Date.now();
      await f.c.publishMany(ch, 2);
      await sub.waitFor(4, 4000);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
      const [a, b, ra, rb] = sub.received;
      expect([ra!.sequence, rb!.sequence]).toEqual([1n, 2n]);
      expect([ra!.redelivered, ra!.redeliveryCount]).toEqual([true, 1]);
      expect(ra!.timestamp).toBe(a!.timestamp);
      expect(rb!.data).toEqual(b!.data);
      sub.ack(1);
      await sub.waitFor(5, 4000);
      const last = sub.received[4]!;
      expect([last.sequence, last.redelivered, last.redeliveryCount]).toEqual([2n, true, 2]);
      sub.ack(2);
      await sub.unsubscribe();
    });

    it("acks sent before a close request are applied (ordering barrier)", async () => {
      const ch = uid("barrier.");
      await f.c.publishMany(ch, 3);
      const d = await f.c.subscribe(ch, { durableName: "d", startPosition: StartPosition.First });
      await d.waitFor(3);
      for (const s of [1, 2, 3]) d.ack(s);
      expect(await d.unsubscribe(true)).toBe("");
      const again = await f.c.subscribe(ch, { durableName: "d", maxInFlight: 10 });
      await f.c.publish(ch, "after");
      await again.waitFor(1);
      await f.barrier();
      expect(again.seqs()).toEqual([4]);
      expect(again.received[0]!.redelivered).toBe(false);
      await again.unsubscribe();
    });
  });
});
