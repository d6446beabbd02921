import { describe, expect, it, vi } from "vitest";
import {
  ErrorCode,
  type Message,
  StanArgumentError,
  StanServerError,
  StanSubscriptionError,
} from "../src/index.js";
import { channel, client, expectNothing, iter, publishN, take, useServer } from "./helpers.js";

const srv = useServer();

const texts = (ms: Message[]) => ms.map((m) => m.string());

describe("start positions", () => {
  it("new-only (default) skips stored messages", async () => {
    await using sc = await client(srv());
    const ch = channel();
    await publishN(sc, ch, 3, "old");
    await using sub = await sc.subscribe(ch);
    await sc.publish(ch, "new");
    expect(texts(await take(iter(sub), 1))).toEqual(["new"]);
  });

  it("last-received starts with the last stored message", async () => {
    await using sc = await client(srv());
    const ch = channel();
    await publishN(sc, ch, 3);
    await using sub = await sc.subscribe(ch, { startAt: "last-received" });
    expect(texts(await take(iter(sub), 1))).toEqual(["m-3"]);
  });

  it("first delivers everything stored, in order, with exact sequences", async () => {
    await using sc = await client(srv());
    const ch = channel();
    await publishN(sc, ch, 5);
    await using sub = await sc.subscribe(ch, { startAt: "first" });
    const got = await take(iter(sub), 5);
    expect(texts(got)).toEqual(["m-1", "m-2", "m-3", "m-4", "m-5"]);
    expect(got.map((m) => m.sequence)).toEqual([1n, 2n, 3n, 4n, 5n]);
    expect(got.every((m) => m.subject === ch && !m.redelivered && m.redeliveryCount === 0)).toBe(
      true,
    );
  });

  it("a sequence starts there; bigint and number both work", async () => {
    await using sc = await client(srv());
    const ch = channel();
    await publishN(sc, ch, 5);
    await using a = await sc.subscribe(ch, { startAt: { sequence: 4 } });
    expect(texts(await take(iter(a), 2))).toEqual(["m-4", "m-5"]);
    await using b = await sc.subscribe(ch, { startAt: { sequence: 2n } });
    expect(texts(await take(iter(b), 1))).toEqual(["m-2"]);
  });

  it("a time or a delta starts at the first message stored since then", async () => {
    await using sc = await client(srv());
    const ch = channel();
    await publishN(sc, ch, 2, "before");
    const sub0 = await sc.subscribe(ch, { startAt: "last-received" });
    const [marker] = await take(iter(sub0), 1);
    await sub0.close();
    // the server's own timestamp of the last "before" message, plus 1 ms
    const t = new Date(marker!.timestamp.getTime() + 1);
    await new Promise((r) => setTimeout(r, 5)); // ms-resolution Date: step past t
    await publishN(sc, ch, 2, "after");
    await using byTime = await sc.subscribe(ch, { startAt: { time: t } });
    expect(texts(await take(iter(byTime), 2))).toEqual(["after-1", "after-2"]);
    await using byDelta = await sc.subscribe(ch, { startAt: { ago: 60_000 } });
    expect(texts(await take(iter(byDelta), 4))).toEqual([
      "before-1",
      "before-2",
      "after-1",
      "after-2",
    ]);
  });

  it("timestamps are exact nanoseconds and match the Date", async () => {
    await using sc = await client(srv());
    const ch = channel();
    const before = Date.now();
    await sc.publish(ch, "t");
    await using sub = await sc.subscribe(ch, { startAt: "first" });
    const [m] = await take(iter(sub), 1);
    expect(typeof m?.timestampNanos).toBe("bigint");
    expect(m!.timestamp.getTime()).toBe(Number(m!.timestampNanos / 1_000_000n));
    expect(m!.timestamp.getTime()).toBeGreaterThanOrEqual(before - 1000);
  });

  it.each([
    [{ startAt: { sequence: 0 } }, /start sequence/],
    [{ startAt: { sequence: -1 } }, /start sequence/],
    [{ startAt: { sequence: 1.5 } }, /start sequence/],
    [{ startAt: { time: new Date(Date.now() + 3_600_000) } }, /in the future/],
    [{ startAt: { time: new Date("nope") } }, /valid Date/],
    [{ startAt: { ago: -5 } }, /start delta/],
    [{ startAt: "sideways" }, /invalid startAt/],
    [{ ackWait: 999 }, /ackWait/],
    [{ maxInflight: 0 }, /maxInflight/],
    [{ queue: "q", durableName: "a:b" }, /can't contain the character ':'/],
    [{ durableName: "" }, /durable name/],
  ])("rejects %o with a StanArgumentError", async (opts, text) => {
    await using sc = await client(srv());
    // @ts-expect-error deliberately invalid input
    const err = await sc.subscribe(channel(), opts).catch((e) => e);
    expect(err).toBeInstanceOf(StanArgumentError);
    expect(err.message).toMatch(text);
  });
});

describe("acks and redelivery", () => {
  it("auto-ack acks when the next message is pulled, never before the body ends", async () => {
    await using sc = await client(srv());
    const ch = channel();
    await publishN(sc, ch, 2);
    // maxInflight 1: while message 1 is unacked the server sends nothing new, only redeliveries
    const sub = await sc.subscribe(ch, { startAt: "first", ackWait: 1000, maxInflight: 1 });
    const it = iter(sub);
    const [first] = await take(it, 1);
    expect(first?.sequence).toBe(1n);
    // the loop body of message 1 is "running": it is not acked, so the server redelivers it
    await vi.waitFor(() => expect(sub.pending).toBe(1), { timeout: 5000, interval: 20 });
    expect(first?.acked).toBe(false);
    const [again] = await take(it, 1); // body finished: message 1 acked now
    expect(first?.acked).toBe(true);
    expect(again?.sequence).toBe(1n);
    expect(again?.redelivered).toBe(true);
    expect(again?.redeliveryCount).toBe(1);
    const [second] = await take(it, 1); // acking the redelivery unblocks message 2
    expect(second?.sequence).toBe(2n);
    expect(second?.redelivered).toBe(false);
    await sub.close();
  });

  it("a loop body that throws leaves its message unacked, so it is redelivered", async () => {
    await using sc = await client(srv());
    const ch = channel();
    await sc.publish(ch, "boom");
    const durableName = "thrower";
    const clientId = sc.clientId;
    const sub = await sc.subscribe(ch, { startAt: "first", durableName, ackWait: 1000 });
    await expect(
      (async () => {
        for await (const m of sub) throw new Error(`failed ${m.string()}`);
      })(),
    ).rejects.toThrow("failed boom");
    expect(sub.isClosed).toBe(true); // leaving the loop closed it, durable kept
    await sc.close();
    await using sc2 = await client(srv(), { clientId });
    await using again = await sc2.subscribe(ch, { durableName, ackWait: 1000 });
    const [m] = await take(iter(again), 1);
    expect(m?.string()).toBe("boom");
    expect(m?.redelivered).toBe(true);
  });

  it("manual acks: only acked messages are not redelivered", async () => {
    await using sc = await client(srv());
    const ch = channel();
    await publishN(sc, ch, 3);
    const sub = await sc.subscribe(ch, { startAt: "first", manualAcks: true, ackWait: 1000 });
    const it = iter(sub);
    const [m1, m2, m3] = await take(it, 3);
    m1!.ack();
    sub.ack(m3!);
    m1!.ack(); // a second ack is a no-op
    const [r] = await take(it, 1, 5000);
    expect(r?.sequence).toBe(m2?.sequence);
    expect(r?.redelivered).toBe(true);
    r!.ack();
    await sub.close();
    expect(() => r!.ack()).not.toThrow(); // already acked: no-op
    expect(() => m2!.ack()).toThrow(StanSubscriptionError);
  });

  it("msg.ack() in auto-ack mode is the official error", async () => {
    await using sc = await client(srv());
    const ch = channel();
    await sc.publish(ch, "x");
    await using sub = await sc.subscribe(ch, { startAt: "first" });
    const [m] = await take(iter(sub), 1);
    expect(() => m!.ack()).toThrow("stan: cannot manually ack in auto-ack mode");
  });

  it("maxInflight bounds what the client buffers", async () => {
    await using sc = await client(srv());
    const ch = channel();
    await publishN(sc, ch, 50);
    await using sub = await sc.subscribe(ch, {
      startAt: "first",
      maxInflight: 5,
      manualAcks: true,
    });
    const it = iter(sub);
    const first5 = await take(it, 5);
    const pending = await expectNothing(it, 300);
    expect(sub.pending).toBe(0);
    for (const m of first5) m.ack();
    const r = await pending.next;
    expect(r.value?.sequence).toBe(6n);
    const next4 = await take(it, 4);
    expect(next4.map((m) => m.sequence)).toEqual([7n, 8n, 9n, 10n]);
    expect(sub.pending).toBeLessThanOrEqual(5);
  });
});

describe("durables", () => {
  it("close keeps the position, unsubscribe deletes it", async () => {
    await using sc = await client(srv());
    const ch = channel();
    await publishN(sc, ch, 3);
    const a = await sc.subscribe(ch, { durableName: "d", startAt: "first" });
    const ita = iter(a);
    await take(ita, 2);
    await ita.next().then(() => {}); // pull #3: acks #2
    await a.close(); // #3 delivered, unacked
    await publishN(sc, ch, 1, "later");
    const b = await sc.subscribe(ch, { durableName: "d", startAt: "first" });
    const resumed = await take(iter(b), 2);
    expect(resumed.map((m) => m.sequence)).toEqual([3n, 4n]);
    expect(resumed[0]?.redelivered).toBe(true);
    await b.unsubscribe();
    const c = await sc.subscribe(ch, { durableName: "d", startAt: "first" });
    const fresh = await take(iter(c), 1);
    expect(fresh[0]?.sequence).toBe(1n); // state deleted: starts over
    await c.close();
  });

  it("a durable survives closing the connection (same clientID)", async () => {
    const ch = channel();
    const sc = await client(srv());
    const clientId = sc.clientId;
    await publishN(sc, ch, 2);
    const s = await sc.subscribe(ch, { durableName: "keep", startAt: "first", manualAcks: true });
    const got = await take(iter(s), 2);
    for (const m of got) m.ack();
    await sc.close();
    await using pub = await client(srv());
    await pub.publish(ch, "while-away");
    await using sc2 = await client(srv(), { clientId });
    await using s2 = await sc2.subscribe(ch, { durableName: "keep", startAt: "first" });
    expect(texts(await take(iter(s2), 1))).toEqual(["while-away"]);
  });

  it("a duplicate online durable is refused by the server", async () => {
    await using sc = await client(srv());
    const ch = channel();
    await using _a = await sc.subscribe(ch, { durableName: "dup" });
    const err = await sc.subscribe(ch, { durableName: "dup" }).catch((e) => e);
    expect(err).toBeInstanceOf(StanServerError);
    expect(err.message).toBe("stan: duplicate durable registration");
  });
});

describe("queue groups", () => {
  it("each message goes to exactly one member of the group", async () => {
    await using sc1 = await client(srv());
    await using sc2 = await client(srv());
    const ch = channel();
    const got = { a: [] as bigint[], b: [] as bigint[] };
    let done!: () => void;
    const all = new Promise<void>((r) => {
      done = r;
    });
    const member = (name: "a" | "b") => async (m: Message) => {
      got[name].push(m.sequence);
      if (got.a.length + got.b.length === 20) done();
    };
    await using _q1 = await sc1.subscribe(ch, { queue: "workers", callback: member("a") });
    await using _q2 = await sc2.subscribe(ch, { queue: "workers", callback: member("b") });
    await publishN(sc1, ch, 20);
    await all;
    const seqs = [...got.a, ...got.b].sort((x, y) => (x < y ? -1 : 1));
    expect(seqs).toEqual(Array.from({ length: 20 }, (_, i) => BigInt(i + 1)));
    expect(got.a.length).toBeGreaterThan(0);
    expect(got.b.length).toBeGreaterThan(0);
  });

  it("a leaving member's unacked messages go to the remaining member", async () => {
    await using sc1 = await client(srv());
    await using sc2 = await client(srv());
    const ch = channel();
    const leaver = await sc1.subscribe(ch, { queue: "w", manualAcks: true, maxInflight: 100 });
    await publishN(sc1, ch, 3);
    const held = await take(iter(leaver), 3); // all 3 went to the only member, unacked
    expect(held.map((m) => m.sequence)).toEqual([1n, 2n, 3n]);
    await using stayer = await sc2.subscribe(ch, { queue: "w", manualAcks: true });
    await leaver.close();
    const moved = await take(iter(stayer), 3);
    expect(moved.map((m) => m.sequence).sort()).toEqual([1n, 2n, 3n]);
    expect(moved.every((m) => m.redelivered)).toBe(true);
  });

  it("durable queue group keeps its position when the last member closes", async () => {
    const ch = channel();
    await using sc = await client(srv());
    await publishN(sc, ch, 3);
    const m1 = await sc.subscribe(ch, { queue: "g", durableName: "dq", startAt: "first" });
    const it = iter(m1);
    await take(it, 2);
    await it.next(); // acks #2 by pulling #3
    await m1.close();
    await publishN(sc, ch, 1, "later");
    await using sc2 = await client(srv());
    await using m2 = await sc2.subscribe(ch, { queue: "g", durableName: "dq", startAt: "first" });
    const got = await take(iter(m2), 2);
    expect(got.map((m) => m.sequence)).toEqual([3n, 4n]);
  });
});

describe("iteration contract", () => {
  it("a second iterator is a clear error", async () => {
    await using sc = await client(srv());
    await using sub = await sc.subscribe(channel());
    iter(sub);
    expect(() => iter(sub)).toThrow(StanSubscriptionError);
    try {
      iter(sub);
    } catch (err) {
      expect((err as StanSubscriptionError).code).toBe(ErrorCode.AlreadyIterating);
    }
  });

  it("break closes the subscription; unsubscribe after close is an invalid subscription", async () => {
    await using sc = await client(srv());
    const ch = channel();
    await publishN(sc, ch, 3);
    const sub = await sc.subscribe(ch, { startAt: "first" });
    let n = 0;
    for await (const _m of sub) {
      if (++n === 2) break;
    }
    expect(sub.isClosed).toBe(true);
    expect(await sub.closed).toBeUndefined();
    await expect(sub.unsubscribe()).rejects.toThrow("stan: invalid subscription");
    await expect(sub.close()).resolves.toBeUndefined();
  });

  it("callback mode runs in order and acks only what resolved", async () => {
    await using sc = await client(srv());
    const ch = channel();
    await publishN(sc, ch, 5);
    const seen: string[] = [];
    const failed: bigint[] = [];
    let done!: () => void;
    const all = new Promise<void>((r) => {
      done = r;
    });
    await using sub = await sc.subscribe(ch, {
      startAt: "first",
      ackWait: 1000,
      callback: async (m) => {
        seen.push(`${m.string()}${m.redelivered ? "*" : ""}`);
        if (m.sequence === 3n && !m.redelivered) throw new Error("transient");
        if (seen.length === 6) done();
      },
      onError: (_e, m) => failed.push(m.sequence),
    });
    await all;
    expect(seen.slice(0, 5)).toEqual(["m-1", "m-2", "m-3", "m-4", "m-5"]);
    expect(seen[5]).toBe("m-3*");
    expect(failed).toEqual([3n]);
    expect(sub.delivered).toBe(6);
  });
});
