/**
 * Issue 15 items 1-2 over the wire: hostile delivery inboxes and a delivery bigger than
 * max_payload, sent as raw protocol messages. Runs against the embedded server and, with
 * NATS_STREAMING_SERVER set, against nats-streaming-server 0.25.6: where the official server
 * answers differently (it validates no inbox; it stores an undeliverable message), the test
 * accepts its answer and checks that ours does better.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FrameSubjectError, isFrameSubject } from "@stan-ts/core";
import { decode, encode, MsgProtoSchema, PubAckSchema, PubMsgSchema } from "@stan-ts/proto";
import { startNatsServer } from "@stan-ts/testing";
import { describe, expect, it } from "vitest";
import { serverInfoFor } from "../src/engine/state.js";
import { startServer } from "../src/index.js";
import type { LogFields, Logger } from "../src/logger.js";
import { FileStore } from "../src/store/file.js";
import { dec, RawClient, type RawSub, uid, useServer } from "./helpers.js";

const INVALID_SUB = "stan: invalid subscription request";

describe("frame subjects", () => {
  it("refuses empty, whitespace and control characters", () => {
    for (const bad of ["", "a b c", "a\r\nPUB x 1", "a\tb", "a\u0000b", "a\u007f"]) {
      expect(isFrameSubject(bad)).toBe(false);
    }
    expect(isFrameSubject("_INBOX.abc.def")).toBe(true);
    const e = new FrameSubjectError("subject", "a b");
    expect(e.code).toBe("INVALID_ARGUMENT");
    expect(e.message).toContain("whitespace");
  });
});

/** A short alphanumeric client ID: the trigger of item 1 needs a small PubMsg envelope. */
function shortId(): string {
  return `p${Math.random().toString(36).slice(2, 6).padEnd(4, "0")}`;
}

/** Publishes `n` messages and expects every PubAck without error. */
async function publishAcked(c: RawClient, ch: string, n: number, prefix: string): Promise<void> {
  for (let i = 0; i < n; i++) {
    const a = await c.publish(ch, `${prefix}${i}`);
    expect(a.error).toBe("");
  }
}

function texts(sub: RawSub): string[] {
  return sub.received.map((m) => dec.decode(m.data));
}

describe("hostile input over the wire (issue 15 items 1-2)", () => {
  const f = useServer({});
  /** nats-streaming-server 0.25.6 (binary mode) rather than ours. */
  const official = () => f.stan.mode === "binary";

  it("an empty delivery inbox is refused; a publish on that channel is acked and delivered to the others", async () => {
    const ch = uid("hostile.empty.");
    const w = await RawClient.connect(f.stan.url, f.stan.clusterId, uid("w"));
    const ws = await w.subscribe(ch);
    const h = await RawClient.connect(f.stan.url, f.stan.clusterId, uid("h"));
    const r = await h.subRequest({ subject: ch, inbox: "" });
    // 0.25.6 accepts it and logs every failed delivery; ours refuses it (it crashed the
    // process before: nats.js threw from the delivery)
    expect(r.error).toBe(official() ? "" : INVALID_SUB);
    await publishAcked(w, ch, 3, "e");
    await ws.waitFor(3);
    expect(ws.seqs()).toEqual([1, 2, 3]);
    expect(texts(ws)).toEqual(["e0", "e1", "e2"]);
    // still serving new clients
    const late = await RawClient.connect(f.stan.url, f.stan.clusterId, uid("late"));
    await late.close();
    await h.close();
    await w.close();
  });

  for (const [name, inbox, hijacks] of [
    ["spaces", "a b c", false],
    ["CRLF and a smuggled PUB", "_INBOX.x\r\nPUB hijacked 1\r\nz", false],
    // a whole frame, then a PUB to any subject that carries the delivery as its payload
    [
      "a crafted frame that makes the server publish elsewhere",
      "_INBOX.x 1\r\nX\r\nPUB hijacked",
      true,
    ],
    ["a tab", "_INBOX.a\tb", false],
    ["a NUL", "_INBOX.a\u0000b", false],
  ] as const) {
    it(`a delivery inbox with ${name} is refused; other clients' PubAcks keep coming`, async () => {
      const ch = uid("hostile.inject.");
      const w = await RawClient.connect(f.stan.url, f.stan.clusterId, uid("w"));
      const ws = await w.subscribe(ch);
      let hijacked = 0;
      const spy = w.nc.subscribe("hijacked", { callback: () => hijacked++ });
      await w.nc.flush();
      const h = await RawClient.connect(f.stan.url, f.stan.clusterId, uid("h"));
      const r = await h.subRequest({ subject: ch, inbox });
      if (official()) {
        // 0.25.6 validates no inbox: the delivery's PUB frame breaks its send connection and
        // PubAcks get lost (3 of 3 timed out when tried), so only check the answer and that it
        // serves again once the hostile client is gone
        expect(r.error).toBe("");
        await w.publish(ch, "lost?").catch(() => undefined);
        await h.close();
        await until(
          async () => (await w.publish(ch, "probe").catch(() => undefined))?.error === "",
        );
      } else {
        expect(r.error).toBe(INVALID_SUB);
        await publishAcked(w, ch, 5, "i");
        await ws.waitFor(5);
        expect(ws.seqs()).toEqual([1, 2, 3, 4, 5]);
        expect(texts(ws)).toEqual(["i0", "i1", "i2", "i3", "i4"]);
        await h.close();
      }
      await w.nc.flush();
      // 0.25.6 does publish the crafted frame's delivery to "hijacked"; ours never
      if (official() && hijacks) expect(hijacked).toBeGreaterThan(0);
      else expect(hijacked).toBe(0);
      spy.unsubscribe();
      await w.close();
    });
  }

  it("a PubMsg exactly at max_payload whose MsgProto is larger: the server survives and the subscriber is not stalled", async () => {
    const ch = uid("hostile.big.");
    const w = await RawClient.connect(f.stan.url, f.stan.clusterId, uid("w"));
    const ws = await w.subscribe(ch, { startPosition: 4 });
    const id = shortId();
    const p = await RawClient.connect(f.stan.url, f.stan.clusterId, id);
    const max = p.nc.info?.max_payload ?? 0;
    expect(max).toBeGreaterThan(1000);
    // 1-byte guid, no connID: the envelope the server drops is smaller than the one it adds
    const pubMsg = (n: number) =>
      encode(PubMsgSchema, { clientID: id, guid: "g", subject: ch, data: new Uint8Array(n) });
    let n = max - 100;
    n += max - pubMsg(n).length;
    const big = pubMsg(n);
    expect(big.length).toBe(max);
    const asDelivered = encode(MsgProtoSchema, {
      sequence: 1n,
      subject: ch,
      data: new Uint8Array(n),
      timestamp: BigInt(Date.now()) * 1_000_000n,
    });
    expect(asDelivered.length).toBeGreaterThan(max);
    const reply = await p.nc.request(`${p.resp.pubPrefix}.${ch}`, big, { timeout: 5000 });
    const ack = decode(PubAckSchema, reply.data);
    expect(ack.guid).toBe("g");
    await publishAcked(w, ch, 3, "s");
    if (official()) {
      // 0.25.6 stores it, every delivery attempt fails (logged), and the subscriber stalls
      // on it for good: the PubAcks came after the deliveries it made, and there were none
      expect(ack.error).toBe("");
      expect(ws.received).toHaveLength(0);
    } else {
      // ours refuses it, so the publisher learns and nothing stalls
      expect(ack.error).toMatch(/^stan: message too large to deliver: .*max_payload of \d+$/);
      await ws.waitFor(3);
      expect(ws.seqs()).toEqual([1, 2, 3]);
      expect(texts(ws)).toEqual(["s0", "s1", "s2"]);
      // a payload that still fits, even when redelivered, is accepted and delivered
      const fits = pubMsg(n - 10);
      const r2 = await p.nc.request(`${p.resp.pubPrefix}.${ch}`, fits, { timeout: 5000 });
      expect(decode(PubAckSchema, r2.data).error).toBe("");
      await ws.waitFor(4);
      expect(ws.received[3]?.data.length).toBe(n - 10);
    }
    await p.close();
    await w.close();
  });
});

async function until(cond: () => Promise<boolean>, timeout = 10_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error("timed out waiting for the server to serve again");
  }
}

describe("a delivery inbox longer than nats-server's max_control_line", () => {
  // its own server: in binary mode the official server does not recover from it
  const f = useServer({});

  it("is refused; other clients' PubAcks keep coming", async () => {
    const ch = uid("hostile.long.");
    const w = await RawClient.connect(f.stan.url, f.stan.clusterId, uid("w"));
    const ws = await w.subscribe(ch);
    const h = await RawClient.connect(f.stan.url, f.stan.clusterId, uid("h"));
    // nats-server closes a connection whose PUB line exceeds max_control_line (4 KB)
    const r = await h.subRequest({ subject: ch, inbox: `_INBOX.${"x".repeat(5000)}` });
    if (f.stan.mode === "binary") {
      // 0.25.6 accepts it; the first delivery gets its send connection closed, and the PUB
      // left in nats.go's reconnect buffer closes it again after every reconnect: from then
      // on no PubAck arrives, for anyone, even after the hostile client is gone
      expect(r.error).toBe("");
      const lost = await w.nc
        .request(`${w.resp.pubPrefix}.${ch}`, pubMsgOf(w, ch, "lost"), { timeout: 1000 })
        .then(
          () => false,
          () => true,
        );
      expect(lost).toBe(true);
      await h.nc.close();
      await w.nc.close();
      return;
    }
    expect(r.error).toBe(INVALID_SUB);
    await publishAcked(w, ch, 3, "l");
    await ws.waitFor(3);
    expect(texts(ws)).toEqual(["l0", "l1", "l2"]);
    await h.close();
    await w.close();
  });
});

function pubMsgOf(c: RawClient, ch: string, text: string): Uint8Array {
  return encode(PubMsgSchema, {
    clientID: c.clientID,
    connID: c.connID,
    guid: `g-${text}`,
    subject: ch,
    data: new TextEncoder().encode(text),
  });
}

/** A logger that keeps its error lines as `message seq=N redelivery=B` (the skip's fields). */
function errorLog(): { logger: Logger; errors: string[] } {
  const errors: string[] = [];
  const logger: Logger = {
    trace() {},
    debug() {},
    info() {},
    warn() {},
    error: (msg: string, fields?: LogFields) => {
      errors.push(`${msg} seq=${String(fields?.seq)} redelivery=${String(fields?.redelivery)}`);
    },
  };
  return { logger, errors };
}

describe("a stored message that no longer fits max_payload (embedded)", () => {
  it("is skipped with an error log after a restart on a NATS server with a smaller max_payload; later messages flow", async () => {
    const dir = mkdtempSync(join(tmpdir(), "stan-ts-big-"));
    const { logger, errors } = errorLog();
    try {
      const ch = uid("big.restart.");
      {
        await using nats = await startNatsServer();
        await using server = await startServer({ natsUrl: nats.url, store: "file", dir, logger });
        const c = await RawClient.connect(nats.url, server.clusterId, uid("pub"));
        expect((await c.publish(ch, new Uint8Array(300_000))).error).toBe("");
        expect((await c.publish(ch, "small")).error).toBe("");
        await c.close();
      }
      await using nats = await startNatsServer({ maxPayload: 100_000 });
      await using server = await startServer({ natsUrl: nats.url, store: "file", dir, logger });
      const c = await RawClient.connect(nats.url, server.clusterId, uid("sub"));
      const s = await c.subscribe(ch, { startPosition: 4 });
      const q = await c.subscribe(ch, { startPosition: 4, qGroup: "g" });
      expect((await c.publish(ch, "after")).error).toBe("");
      for (const sub of [s, q]) {
        await sub.waitFor(2);
        expect(sub.seqs()).toEqual([2, 3]);
        expect(texts(sub)).toEqual(["small", "after"]);
      }
      // once per subscription (plain, then the queue group's member)
      expect(errors).toEqual([
        "message too large to deliver, skipped seq=1 redelivery=false",
        "message too large to deliver, skipped seq=1 redelivery=false",
      ]);
      await c.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** A free TCP port on 127.0.0.1 (for nats-server's monitoring endpoint). */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const addr = srv.address();
  await new Promise((r) => srv.close(r));
  if (addr === null || typeof addr === "string") throw new Error("no port");
  return addr.port;
}

describe("a pending message whose redelivery no longer fits max_payload (embedded)", () => {
  it("is dropped from the pending set with an error log, so the stalled subscriber moves on", async () => {
    const dir = mkdtempSync(join(tmpdir(), "stan-ts-redeliver-"));
    const { logger, errors } = errorLog();
    try {
      const ch = uid("big.redeliver.");
      const data = new Uint8Array(50_000);
      // the first delivery's size; a redelivery adds 4 bytes (redelivered, redeliveryCount 1)
      const size = encode(MsgProtoSchema, {
        sequence: 1n,
        subject: ch,
        data,
        timestamp: BigInt(Date.now()) * 1_000_000n,
      }).length;
      {
        await using nats = await startNatsServer();
        await using server = await startServer({ natsUrl: nats.url, store: "file", dir, logger });
        const c = await RawClient.connect(nats.url, server.clusterId, uid("pub"));
        expect((await c.publish(ch, data)).error).toBe("");
        await c.close();
      }
      // now the first delivery just fits, a redelivery does not
      await using nats = await startNatsServer({ maxPayload: size });
      await using server = await startServer({ natsUrl: nats.url, store: "file", dir, logger });
      const c = await RawClient.connect(nats.url, server.clusterId, uid("sub"));
      const s = await c.subscribe(ch, { startPosition: 4, maxInFlight: 1, ackWaitInSecs: 1 });
      await s.waitFor(1);
      expect(s.received[0]?.data.length).toBe(50_000);
      // held back by maxInFlight 1 until seq 1 leaves the pending set (never acked here)
      expect((await c.publish(ch, "next")).error).toBe("");
      await s.waitFor(2, 10_000);
      expect(s.seqs()).toEqual([1, 2]);
      expect(texts(s)[1]).toBe("next");
      expect(errors).toEqual(["message too large to deliver, skipped seq=1 redelivery=true"]);
      await c.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("a recovered client whose heartbeat inbox cannot be a subject (embedded)", () => {
  it("gets failing heartbeats without a byte sent: the server's hb connection is never broken", async () => {
    const dir = mkdtempSync(join(tmpdir(), "stan-ts-hb-"));
    try {
      // a store written before connect refused such inboxes
      const cid = "test-cluster";
      const store = new FileStore(dir, () => ({ maxMsgs: 0, maxBytes: 0, maxAge: 0 }), {
        sync: false,
      });
      store.recover();
      store.init(serverInfoFor(cid, "_STAN.discover"));
      for (const [id, hbInbox] of [
        ["spaces", "a b"],
        ["crlf", "_INBOX.x\r\nPUB y 1"],
      ] as const) {
        store.addClient({ id, hbInbox, connID: "", protocol: 1, pingInterval: 5, pingMaxOut: 88 });
      }
      store.close();
      const mport = await freePort();
      await using nats = await startNatsServer({ args: ["-m", String(mport)] });
      const hbConns = async (): Promise<number[]> => {
        const r = await fetch(`http://127.0.0.1:${mport}/connz`);
        const body = (await r.json()) as { connections: Array<{ cid: number; name?: string }> };
        return body.connections.filter((c) => c.name === `_NSS-${cid}-hb`).map((c) => c.cid);
      };
      await using server = await startServer({
        natsUrl: nats.url,
        store: "file",
        dir,
        hbInterval: 20,
        hbTimeout: 20,
        hbFailCount: 1000,
        logLevel: "silent",
      });
      const g = await RawClient.connect(nats.url, server.clusterId, uid("g"));
      const before = await hbConns();
      expect(before).toHaveLength(1);
      // the recovered clients' heartbeats fire on the same interval as g's
      const seen = g.hbCount.n;
      const deadline = Date.now() + 5000;
      while (g.hbCount.n < seen + 10 && Date.now() < deadline) {
        expect((await g.ping()).error).toBe("");
      }
      expect(g.hbCount.n).toBeGreaterThanOrEqual(seen + 10);
      expect(await hbConns()).toEqual(before);
      await g.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
