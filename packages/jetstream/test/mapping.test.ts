// Each row of the README's mapping table, checked on the JetStream server itself: what
// streams and consumers the backend creates, with which settings, and what it refuses.

import { startNatsServer } from "@stan-ts/testing";
import { type NatsConnection, connect as natsConnect } from "nats";
import { connect, ErrorCode, StanConnectionError, StanServerError } from "stan-ts";
import { afterAll, beforeAll, expect, it } from "vitest";
import { channel, iter, publishN, take, uniqueId } from "../../client/test/helpers.js";
import { startConfig } from "../src/consumer.js";
import {
  consumerName,
  escapeName,
  isNotSupported,
  jetstream,
  StanNotSupportedError,
  streamName,
} from "../src/index.js";
import { jetStreamOnly, startJetStream, useTarget } from "./backends.js";

const target = useTarget(() =>
  startJetStream({
    channels: { "limited.msgs": { maxMsgs: 5, maxBytes: 1 << 20, maxAge: 60_000 } },
  }),
);
let raw: NatsConnection;
beforeAll(async () => {
  raw = await natsConnect({ servers: target().url });
});
afterAll(async () => {
  await raw?.close();
});

jetStreamOnly("names", () => {
  it("a channel's stream is its escaped name: letters, digits and '-' stay, bytes become _XX", () => {
    expect(streamName("orders")).toBe("orders");
    expect(streamName("orders.eu")).toBe("orders_2Eeu");
    expect(streamName("a_b")).toBe("a_5Fb");
    expect(streamName("a.b", "STAN-")).toBe("STAN-a_2Eb");
    expect(escapeName("é")).toBe("_C3_A9");
    // injective where a naive `.` -> `_` is not
    expect(streamName("a.b")).not.toBe(streamName("a_b"));
  });

  it("very long names are shortened with a hash, still distinct and valid", () => {
    const a = streamName(`${"x".repeat(300)}.a`);
    const b = streamName(`${"x".repeat(300)}.b`);
    expect(a.length).toBeLessThanOrEqual(200);
    expect(a).not.toBe(b);
    expect(a).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it("consumers: a durable per clientID, a (durable) queue group per group", () => {
    expect(consumerName("durable", "c1", "d", undefined, "u")).toBe("D_3Ac1_3Ad");
    expect(consumerName("durable-queue", "c1", "d", "q", "u")).toBe(
      consumerName("durable-queue", "c2", "d", "q", "v"),
    );
    expect(consumerName("queue", "c1", undefined, "q", "u")).toBe("q_3Aq");
    expect(consumerName("plain", "c1", undefined, undefined, "u1")).not.toBe(
      consumerName("plain", "c1", undefined, undefined, "u2"),
    );
  });
});

jetStreamOnly("channels are streams", () => {
  it("the first use creates a file stream on the channel's subject, limits from the options", async () => {
    await using sc = await target().connect();
    await sc.publish("limited.msgs", "x");
    const jsm = await raw.jetstreamManager();
    const info = await jsm.streams.info(streamName("limited.msgs"));
    expect(info.config.subjects).toEqual(["limited.msgs"]);
    expect(info.config.storage).toBe("file");
    expect(info.config.max_msgs).toBe(5);
    expect(info.config.max_bytes).toBe(1 << 20);
    expect(info.config.max_age).toBe(60_000 * 1_000_000);
    expect(info.config.discard).toBe("old");
  });

  it("max msgs drops the oldest: 'first' then starts at the oldest kept", async () => {
    await using sc = await target().connect();
    await publishN(sc, "limited.msgs", 10);
    await using sub = await sc.subscribe("limited.msgs", { startAt: "first" });
    const got = await take(iter(sub), 5);
    expect(got.map((m) => m.string())).toEqual(["m-6", "m-7", "m-8", "m-9", "m-10"]);
  });

  it("a STAN limit JetStream lacks is a typed error", () => {
    let err: unknown;
    try {
      jetstream({ limits: { maxInactivity: 1000 } as never });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StanNotSupportedError);
    expect(isNotSupported(err)).toBe(true);
    expect((err as Error).message).toContain("maxInactivity");
  });
});

jetStreamOnly("publish", () => {
  it("sets Nats-Msg-Id to the guid: a re-send with the same guid is stored once", async () => {
    await using sc = await target().connect();
    const ch = channel();
    const guid = await sc.publish(ch, "once");
    const jsm = await raw.jetstreamManager();
    const stored = await jsm.streams.getMessage(streamName(ch), { seq: 1 });
    expect(stored.header.get("Nats-Msg-Id")).toBe(guid);
    const js = raw.jetstream();
    const again = await js.publish(ch, new TextEncoder().encode("once"), { msgID: guid });
    expect(again.duplicate).toBe(true);
    expect((await jsm.streams.info(streamName(ch))).state.messages).toBe(1);
  });

  it("a re-send across a server restart is deduplicated: every guid stored exactly once", async () => {
    await using t = await startJetStream();
    await using sc = await t.connect({ pubAckTimeout: 20_000 });
    const ch = channel();
    await sc.publish(ch, "warm-up"); // the stream exists
    const acks: Promise<string>[] = [];
    for (let i = 0; i < 200; i++) {
      acks.push((await sc.publishAsync(ch, `m-${i}`)).acked);
      if (i === 100) void t.nats.restart();
    }
    const guids = await Promise.all(acks);
    const nc = await natsConnect({ servers: t.url });
    try {
      const jsm = await nc.jetstreamManager();
      const state = (await jsm.streams.info(streamName(ch))).state;
      expect(state.messages).toBe(201);
      const seen = new Set<string>();
      for (let seq = 2; seq <= state.last_seq; seq++) {
        const m = await jsm.streams.getMessage(streamName(ch), { seq });
        seen.add(m.header.get("Nats-Msg-Id"));
      }
      expect(seen).toEqual(new Set(guids));
    } finally {
      await nc.close();
    }
  });
});

jetStreamOnly("limits of a message", () => {
  it("a payload that does not fit max_payload with its headers is refused before sending", async () => {
    await using sc = await target().connect();
    const max = (sc.nc as unknown as NatsConnection).info?.max_payload ?? 0;
    const err = await sc.publish(channel(), new Uint8Array(max)).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe(ErrorCode.MaxPayloadExceeded);
    expect((err as Error).message).toContain("JetStream headers");
  });

  it("an aborted subscribe leaves no consumer behind", async () => {
    await using sc = await target().connect();
    const ch = channel();
    await sc.publish(ch, "x"); // the stream exists
    const ac = new AbortController();
    const pending = sc.subscribe(ch, { durableName: "abandoned", signal: ac.signal });
    ac.abort();
    await expect(pending).rejects.toMatchObject({ code: ErrorCode.Aborted });
    // the same durable can be made again: nothing of the abandoned one stays live
    await using again = await sc.subscribe(ch, { durableName: "abandoned", startAt: "first" });
    expect((await take(iter(again), 1))[0]?.string()).toBe("x");
  });
});

jetStreamOnly("subscriptions are pull consumers", () => {
  it("a durable subscription goes on across a restart of the server", async () => {
    await using t = await startJetStream();
    await using sc = await t.connect({ natsOptions: { reconnectTimeWait: 50 } });
    const ch = channel();
    await sc.publish(ch, "before");
    await using sub = await sc.subscribe(ch, { durableName: "lives", startAt: "first" });
    const it1 = iter(sub);
    expect((await take(it1, 1))[0]?.string()).toBe("before");
    const reconnected = (async () => {
      for await (const s of sc.status()) if (s.type === "reconnected") return;
    })();
    await t.nats.restart();
    await reconnected;
    await sc.publish(ch, "after");
    expect((await take(it1, 1))[0]?.string()).toBe("after");
  });

  it("maxInflight is max_ack_pending, ackWait is ack_wait, acks explicit", async () => {
    await using sc = await target().connect();
    const ch = channel();
    await using _sub = await sc.subscribe(ch, {
      durableName: "cfg",
      maxInflight: 7,
      ackWait: 3000,
    });
    const jsm = await raw.jetstreamManager();
    const c = await jsm.consumers.info(
      streamName(ch),
      consumerName("durable", sc.clientId, "cfg", undefined, ""),
    );
    expect(c.config.max_ack_pending).toBe(7);
    expect(c.config.ack_wait).toBe(3000 * 1_000_000);
    expect(c.config.ack_policy).toBe("explicit");
    expect(c.config.durable_name).toBeDefined();
    expect(c.config.deliver_subject).toBeUndefined(); // pull: the client asks for messages
  });

  it("a durable that resumes takes the new maxInflight and ackWait", async () => {
    await using sc = await target().connect();
    const ch = channel();
    const first = await sc.subscribe(ch, { durableName: "upd", maxInflight: 7, ackWait: 3000 });
    await first.close();
    await using _again = await sc.subscribe(ch, {
      durableName: "upd",
      maxInflight: 9,
      ackWait: 4000,
    });
    const jsm = await raw.jetstreamManager();
    const c = await jsm.consumers.info(
      streamName(ch),
      consumerName("durable", sc.clientId, "upd", undefined, ""),
    );
    expect(c.config.max_ack_pending).toBe(9);
    expect(c.config.ack_wait).toBe(4000 * 1_000_000);
  });

  it("pull = demand: with nothing acked, at most maxInflight are delivered", async () => {
    await using sc = await target().connect();
    const ch = channel();
    await publishN(sc, ch, 50);
    await using sub = await sc.subscribe(ch, {
      durableName: "bounded",
      startAt: "first",
      manualAcks: true,
      maxInflight: 5,
    });
    await take(iter(sub), 5);
    const jsm = await raw.jetstreamManager();
    const name = consumerName("durable", sc.clientId, "bounded", undefined, "");
    const c = await jsm.consumers.info(streamName(ch), name);
    expect(c.num_ack_pending).toBe(5);
    expect(c.num_pending).toBe(45);
    expect(sub.pending).toBe(0);
  });

  it("close keeps a durable's consumer, unsubscribe deletes it, a plain one goes on close", async () => {
    await using sc = await target().connect();
    const ch = channel();
    const jsm = await raw.jetstreamManager();
    const stream = streamName(ch);
    const dur = consumerName("durable", sc.clientId, "keep", undefined, "");
    const a = await sc.subscribe(ch, { durableName: "keep" });
    const plain = await sc.subscribe(ch);
    expect((await jsm.consumers.list(stream).next()).length).toBe(2);
    await a.close();
    await plain.close();
    const left = await jsm.consumers.list(stream).next();
    expect(left.map((c) => c.name)).toEqual([dur]);
    const b = await sc.subscribe(ch, { durableName: "keep" });
    await b.unsubscribe();
    expect((await jsm.consumers.list(stream).next()).length).toBe(0);
  });

  it("the connection's close keeps durables and queue groups, removes plain consumers", async () => {
    const sc = await target().connect();
    const ch = channel();
    const q = uniqueId("q");
    await sc.subscribe(ch, { durableName: "d" });
    await sc.subscribe(ch, { queue: q });
    await sc.subscribe(ch);
    await sc.close();
    const jsm = await raw.jetstreamManager();
    const names = (await jsm.consumers.list(streamName(ch)).next()).map((c) => c.name).sort();
    expect(names).toEqual(
      [
        consumerName("durable", sc.clientId, "d", undefined, ""),
        consumerName("queue", sc.clientId, undefined, q, ""),
      ].sort(),
    );
  });

  it("a consumer deleted on the server ends the subscription with a typed error", async () => {
    await using sc = await target().connect();
    const ch = channel();
    const sub = await sc.subscribe(ch, { durableName: "doomed" });
    const jsm = await raw.jetstreamManager();
    await jsm.consumers.delete(
      streamName(ch),
      consumerName("durable", sc.clientId, "doomed", undefined, ""),
    );
    const err = await sub.closed;
    expect(err?.code).toBe(ErrorCode.InvalidSubscription);
    expect(err?.message).toContain("was deleted");
  });
});

jetStreamOnly("connect", () => {
  it("a NATS server without JetStream is CONNECT_FAILED, with what to do", async () => {
    await using plain = await startNatsServer();
    const err = await connect({
      clusterId: "c",
      clientId: uniqueId(),
      servers: plain.url,
      connectTimeout: 1000,
      backend: jetstream(),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StanConnectionError);
    expect((err as StanConnectionError).code).toBe(ErrorCode.ConnectFailed);
    expect((err as Error).message).toContain("-js");
  });

  it("a borrowed connection without the nats 2.x JetStream API is a typed error", async () => {
    const fake = { isClosed: () => false } as never;
    const err = await target()
      .connect({ nc: fake })
      .catch((e: unknown) => e);
    expect(isNotSupported(err)).toBe(true);
  });

  it("a borrowed nats 2.x connection stays open after close", async () => {
    const sc = await target().connect({ nc: raw as never });
    await sc.publish(channel(), "x");
    await sc.close();
    expect(raw.isClosed()).toBe(false);
  });

  it("a stream of that name on other subjects is refused with the fix", async () => {
    const jsm = await raw.jetstreamManager();
    const ch = channel();
    await jsm.streams.add({ name: streamName(ch), subjects: [`other.${ch}`] });
    await using sc = await target().connect();
    const err = await sc.publish(ch, "x").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StanServerError);
    expect((err as Error).message).toContain("streamPrefix");
  });
});

jetStreamOnly("start positions are deliver policies", () => {
  it("each STAN start position has its deliver policy", () => {
    expect(startConfig("new-only", 9n)).toEqual({ deliver_policy: "new" });
    expect(startConfig("last-received", 9n)).toEqual({ deliver_policy: "last" });
    expect(startConfig("first", 9n)).toEqual({ deliver_policy: "all" });
    expect(startConfig({ sequence: 4n }, 9n)).toEqual({
      deliver_policy: "by_start_sequence",
      opt_start_seq: 4,
    });
    // past the last: the next one, as STAN's "new only"
    expect(startConfig({ sequence: 99 }, 9n)).toMatchObject({ opt_start_seq: 10 });
    const at = new Date("2026-01-02T03:04:05.678Z");
    expect(startConfig({ time: at }, 9n)).toEqual({
      deliver_policy: "by_start_time",
      opt_start_time: "2026-01-02T03:04:05.678Z",
    });
    expect(startConfig({ ago: 1000 }, 9n)).toMatchObject({ deliver_policy: "by_start_time" });
  });

  it("a start sequence past 2^53 is a typed error", () => {
    expect(() => startConfig({ sequence: 2n ** 60n }, 2n ** 61n)).toThrow(StanNotSupportedError);
  });

  it("the consumer on the server has the policy of the subscription's start", async () => {
    await using sc = await target().connect();
    const ch = channel();
    await publishN(sc, ch, 3);
    await using _s = await sc.subscribe(ch, { durableName: "seq", startAt: { sequence: 2 } });
    const jsm = await raw.jetstreamManager();
    const c = await jsm.consumers.info(
      streamName(ch),
      consumerName("durable", sc.clientId, "seq", undefined, ""),
    );
    expect(c.config.deliver_policy).toBe("by_start_sequence");
    expect(c.config.opt_start_seq).toBe(2);
  });
});

jetStreamOnly("differences", () => {
  it("JetStream keeps no client registry: a second connection with the same clientID is accepted", async () => {
    const clientId = uniqueId("twice");
    await using a = await target().connect({ clientId });
    await using b = await target().connect({ clientId });
    expect(a.isOpen && b.isOpen).toBe(true);
  });
});
