// One behavioural suite, two backends: the semantics users rely on (start positions, durables,
// queue groups, acks and redelivery, maxInflight, pull = demand, close vs unsubscribe, the
// publish window) run unchanged against NATS Streaming and against JetStream through
// `backend: jetstream()`. A case that fails on one backend is a difference the README must list.

import { ErrorCode, type Message, StanServerError, StanSubscriptionError } from "stan-ts";
import { describe, expect, it } from "vitest";
import { channel, iter, publishN, take, uniqueId } from "../../client/test/helpers.js";
import { startJetStream, startStan, type Target, useTarget } from "./backends.js";

const texts = (ms: Message[]) => ms.map((m) => m.string());

describe.each([
  ["stan", startStan],
  ["jetstream", () => startJetStream()],
] as const)("on %s", (_name, start) => {
  const target = useTarget<Target>(start);

  describe("publish", () => {
    it("resolves with the guid once stored; sequences are per channel, from 1", async () => {
      await using sc = await target().connect();
      const a = channel();
      const b = channel();
      const guid = await sc.publish(a, "x");
      expect(guid).toMatch(/^[A-Za-z0-9]{22}$/);
      await sc.publish(b, "y");
      await sc.publish(a, "z");
      await using sa = await sc.subscribe(a, { startAt: "first" });
      await using sb = await sc.subscribe(b, { startAt: "first" });
      expect((await take(iter(sa), 2)).map((m) => m.sequence)).toEqual([1n, 2n]);
      expect((await take(iter(sb), 1)).map((m) => m.sequence)).toEqual([1n]);
    });

    it("publishAsync and publishBatch store every message in order", async () => {
      await using sc = await target().connect({ maxPubAcksInflight: 4 });
      const ch = channel();
      const sent = [];
      for (let i = 1; i <= 10; i++) sent.push(await sc.publishAsync(ch, `a-${i}`));
      expect(sc.pendingPublishes).toBeLessThanOrEqual(4);
      await Promise.all(sent.map((s) => s.acked));
      const { guids, failures } = await sc.publishBatch(ch, ["b-1", "b-2", "b-3"]);
      expect(failures).toEqual([]);
      expect(guids).toHaveLength(3);
      await using sub = await sc.subscribe(ch, { startAt: "first" });
      const got = texts(await take(iter(sub), 13));
      expect(got.slice(0, 10)).toEqual(Array.from({ length: 10 }, (_, i) => `a-${i + 1}`));
      expect(got.slice(10)).toEqual(["b-1", "b-2", "b-3"]);
    });

    it("messages carry subject, data, a nanosecond timestamp and no redelivery", async () => {
      await using sc = await target().connect();
      const ch = channel();
      const before = BigInt(Date.now() - 1000) * 1_000_000n;
      await sc.publish(ch, { id: 7 });
      await using sub = await sc.subscribe(ch, { startAt: "first" });
      const [m] = await take(iter(sub), 1);
      expect(m?.subject).toBe(ch);
      expect(m?.json()).toEqual({ id: 7 });
      expect(m?.timestampNanos).toBeGreaterThan(before);
      expect(m?.timestampNanos).toBeLessThan(BigInt(Date.now() + 1000) * 1_000_000n);
      expect(m?.redelivered).toBe(false);
      expect(m?.redeliveryCount).toBe(0);
    });
  });

  describe("start positions", () => {
    it("new-only (default) skips stored messages", async () => {
      await using sc = await target().connect();
      const ch = channel();
      await publishN(sc, ch, 3, "old");
      await using sub = await sc.subscribe(ch);
      await sc.publish(ch, "new");
      expect(texts(await take(iter(sub), 1))).toEqual(["new"]);
    });

    it("last-received starts with the last stored message", async () => {
      await using sc = await target().connect();
      const ch = channel();
      await publishN(sc, ch, 3);
      await using sub = await sc.subscribe(ch, { startAt: "last-received" });
      expect(texts(await take(iter(sub), 1))).toEqual(["m-3"]);
    });

    it("first delivers everything stored, in order", async () => {
      await using sc = await target().connect();
      const ch = channel();
      await publishN(sc, ch, 5);
      await using sub = await sc.subscribe(ch, { startAt: "first" });
      expect(texts(await take(iter(sub), 5))).toEqual(["m-1", "m-2", "m-3", "m-4", "m-5"]);
    });

    it("a sequence starts there; past the last one it means new only", async () => {
      await using sc = await target().connect();
      const ch = channel();
      await publishN(sc, ch, 5);
      await using a = await sc.subscribe(ch, { startAt: { sequence: 4 } });
      expect(texts(await take(iter(a), 2))).toEqual(["m-4", "m-5"]);
      await using b = await sc.subscribe(ch, { startAt: { sequence: 2n } });
      expect(texts(await take(iter(b), 1))).toEqual(["m-2"]);
      await using c = await sc.subscribe(ch, { startAt: { sequence: 99 } });
      await sc.publish(ch, "m-6");
      expect(texts(await take(iter(c), 1))).toEqual(["m-6"]);
    });

    it("a time or a delta starts at the first message stored since then", async () => {
      await using sc = await target().connect();
      const ch = channel();
      await publishN(sc, ch, 2, "before");
      await using probe = await sc.subscribe(ch, { startAt: "last-received" });
      const [last] = await take(iter(probe), 1);
      // the first "after" message is stored strictly later than the last "before" one
      const cut = new Date(Number((last as Message).timestampNanos / 1_000_000n) + 1);
      // STAN sends a time as a delta from the client's clock, which the server subtracts from
      // its own when the request arrives: the start drifts later by that latency. A clock
      // margin (not an event wait) keeps the "after" messages clear of it.
      await new Promise((r) => setTimeout(r, 50));
      await publishN(sc, ch, 2, "after");
      await using byTime = await sc.subscribe(ch, { startAt: { time: cut } });
      expect(texts(await take(iter(byTime), 2))).toEqual(["after-1", "after-2"]);
      await using byAgo = await sc.subscribe(ch, { startAt: { ago: 60_000 } });
      expect(texts(await take(iter(byAgo), 4))).toEqual([
        "before-1",
        "before-2",
        "after-1",
        "after-2",
      ]);
    });
  });

  describe("acks and redelivery", () => {
    it("auto-ack: the message handed out is acked when the loop asks for the next", async () => {
      await using sc = await target().connect();
      const ch = channel();
      await publishN(sc, ch, 2);
      const sub = await sc.subscribe(ch, { startAt: "first", ackWait: 1000, durableName: "d" });
      const it1 = iter(sub);
      await take(it1, 2); // m-1 acked by the second next(); m-2 handed out, not acked
      await sub.close();
      await using again = await sc.subscribe(ch, { durableName: "d", ackWait: 1000 });
      const [m] = await take(iter(again), 1);
      expect(m?.string()).toBe("m-2");
      expect(m?.redelivered).toBe(true);
    });

    it("manual acks: an unacked message is redelivered after ackWait, counted", async () => {
      await using sc = await target().connect();
      const ch = channel();
      await sc.publish(ch, "x");
      await using sub = await sc.subscribe(ch, {
        startAt: "first",
        manualAcks: true,
        ackWait: 1000,
      });
      const it1 = iter(sub);
      const [first, second] = await take(it1, 2);
      expect(first?.redelivered).toBe(false);
      expect(second?.sequence).toBe(first?.sequence);
      expect(second?.redelivered).toBe(true);
      expect(second?.redeliveryCount).toBe(1);
      second?.ack();
      expect(second?.acked).toBe(true);
    });

    it("msg.ack() in auto-ack mode is refused with the official text", async () => {
      await using sc = await target().connect();
      const ch = channel();
      await sc.publish(ch, "x");
      await using sub = await sc.subscribe(ch, { startAt: "first" });
      const [m] = await take(iter(sub), 1);
      expect(() => m?.ack()).toThrow(StanSubscriptionError);
      expect(() => m?.ack()).toThrow("stan: cannot manually ack in auto-ack mode");
    });

    it("maxInflight bounds unacked deliveries: nothing past it until acks", async () => {
      await using sc = await target().connect();
      const ch = channel();
      await publishN(sc, ch, 6);
      await using sub = await sc.subscribe(ch, {
        startAt: "first",
        manualAcks: true,
        maxInflight: 2,
        ackWait: 1000,
      });
      const it1 = iter(sub);
      const got = await take(it1, 2);
      expect(texts(got)).toEqual(["m-1", "m-2"]);
      // the next message is a redelivery (after ackWait), not m-3: the window is full. (Which
      // of the two comes first is not specified: nats-server 2.9 may redeliver messages whose
      // ackWait ends in the same tick in any order.)
      const [next] = await take(it1, 1);
      expect(["m-1", "m-2"]).toContain(next?.string());
      expect(next?.redelivered).toBe(true);
      expect(sub.pending).toBeLessThanOrEqual(2);
      next?.ack();
      for (const m of got) m.ack();
      // with room again, the next new messages come (redeliveries of m-1/m-2 may come between)
      const fresh: Message[] = [];
      while (fresh.length < 2) {
        const [m] = await take(it1, 1);
        m?.ack();
        if (m && m.sequence > 2n && !fresh.some((f) => f.sequence === m.sequence)) fresh.push(m);
      }
      expect(texts(fresh)).toEqual(["m-3", "m-4"]);
    });

    it("a callback that throws leaves the message unacked: it comes again", async () => {
      await using sc = await target().connect();
      const ch = channel();
      await sc.publish(ch, "x");
      const seen: boolean[] = [];
      let done!: () => void;
      const finished = new Promise<void>((r) => {
        done = r;
      });
      await using _sub = await sc.subscribe(ch, {
        startAt: "first",
        ackWait: 1000,
        onError: () => {},
        callback: (m) => {
          seen.push(m.redelivered);
          if (!m.redelivered) throw new Error("first time fails");
          done();
        },
      });
      await finished;
      expect(seen).toEqual([false, true]);
    });
  });

  describe("durables", () => {
    it("close keeps the position; a new subscription resumes after the last ack", async () => {
      await using sc = await target().connect();
      const ch = channel();
      await publishN(sc, ch, 3);
      const sub = await sc.subscribe(ch, {
        durableName: "dur",
        startAt: "first",
        manualAcks: true,
      });
      const got = await take(iter(sub), 2);
      for (const m of got) m.ack();
      await sub.close();
      await sc.publish(ch, "m-4");
      await using again = await sc.subscribe(ch, {
        durableName: "dur",
        startAt: "first",
        manualAcks: true,
      });
      const next = await take(iter(again), 2);
      expect(texts(next)).toEqual(["m-3", "m-4"]);
    });

    it("a durable survives closing the connection", async () => {
      const clientId = uniqueId("durable");
      const ch = channel();
      {
        await using sc = await target().connect({ clientId });
        await publishN(sc, ch, 2);
        await using sub = await sc.subscribe(ch, { durableName: "d", startAt: "first" });
        await take(iter(sub), 2); // m-1 acked, m-2 not
      }
      await using sc2 = await target().connect({ clientId });
      await using sub2 = await sc2.subscribe(ch, { durableName: "d" });
      expect(texts(await take(iter(sub2), 1))).toEqual(["m-2"]);
    });

    it("unsubscribe deletes it: the next one starts afresh", async () => {
      await using sc = await target().connect();
      const ch = channel();
      await publishN(sc, ch, 3);
      const sub = await sc.subscribe(ch, { durableName: "gone", startAt: "first" });
      await take(iter(sub), 3);
      await sub.unsubscribe();
      await using again = await sc.subscribe(ch, { durableName: "gone", startAt: "first" });
      expect(texts(await take(iter(again), 3))).toEqual(["m-1", "m-2", "m-3"]);
    });

    it("the same durable twice on one connection is refused", async () => {
      await using sc = await target().connect();
      const ch = channel();
      await using _a = await sc.subscribe(ch, { durableName: "twice" });
      const err = await sc.subscribe(ch, { durableName: "twice" }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StanServerError);
      expect((err as Error).message).toBe("stan: duplicate durable registration");
    });

    it("leaving the loop closes like close(): the durable keeps its position", async () => {
      await using sc = await target().connect();
      const ch = channel();
      await publishN(sc, ch, 3);
      const sub = await sc.subscribe(ch, { durableName: "loop", startAt: "first" });
      for await (const m of sub) {
        if (m.string() === "m-2") break; // m-2 not acked
      }
      expect(sub.isClosed).toBe(true);
      await using again = await sc.subscribe(ch, { durableName: "loop" });
      expect(texts(await take(iter(again), 2))).toEqual(["m-2", "m-3"]);
    });
  });

  describe("queue groups", () => {
    it("each message goes to one member of the group", async () => {
      await using sc = await target().connect();
      const ch = channel();
      const queue = uniqueId("q");
      await using a = await sc.subscribe(ch, { queue });
      await using b = await sc.subscribe(ch, { queue });
      await publishN(sc, ch, 20);
      const seen = new Map<bigint, number>();
      let allSeen!: () => void;
      const everyOne = new Promise<null>((r) => {
        allSeen = () => r(null);
      });
      const count = async (sub: typeof a) => {
        const it1 = iter(sub);
        for (;;) {
          const r = await Promise.race([it1.next(), everyOne]);
          if (r === null || r.done) return;
          seen.set(r.value.sequence, (seen.get(r.value.sequence) ?? 0) + 1);
          if (seen.size === 20) allSeen();
        }
      };
      const deadline = setTimeout(allSeen, 15_000); // a failsafe: the counts below then fail
      await Promise.all([count(a), count(b)]);
      clearTimeout(deadline);
      expect(seen.size).toBe(20);
      expect([...seen.values()].every((n) => n === 1)).toBe(true);
    });

    it("a durable queue group keeps its position when its members close", async () => {
      await using sc = await target().connect();
      const ch = channel();
      const queue = uniqueId("dq");
      await publishN(sc, ch, 3);
      const a = await sc.subscribe(ch, {
        queue,
        durableName: "dq",
        startAt: "first",
        manualAcks: true,
      });
      const got = await take(iter(a), 2);
      for (const m of got) m.ack();
      await a.close();
      await using b = await sc.subscribe(ch, { queue, durableName: "dq", manualAcks: true });
      expect(texts(await take(iter(b), 1))).toEqual(["m-3"]);
    });
  });

  describe("ending", () => {
    it("close ends the iterator; unsubscribe after close is refused", async () => {
      await using sc = await target().connect();
      const ch = channel();
      const sub = await sc.subscribe(ch);
      const it1 = iter(sub);
      const next = it1.next();
      await sub.close();
      expect((await next).done).toBe(true);
      expect(await sub.closed).toBeUndefined();
      const err = await sub.unsubscribe().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StanSubscriptionError);
      expect((err as StanSubscriptionError).code).toBe(ErrorCode.InvalidSubscription);
    });

    it("closing the connection ends subscriptions and refuses publishes", async () => {
      const sc = await target().connect();
      const ch = channel();
      const sub = await sc.subscribe(ch);
      await sc.close();
      expect(sc.isOpen).toBe(false);
      expect(sub.isClosed).toBe(true);
      expect(await sc.closed).toBeUndefined();
      const err = await sc.publish(ch, "late").catch((e: unknown) => e);
      expect((err as { code?: string }).code).toBe(ErrorCode.ConnectionClosed);
    });
  });
});
