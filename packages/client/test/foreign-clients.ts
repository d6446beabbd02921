/**
 * Other languages' official NATS Streaming clients, driven through the interop tools that
 * `bash interop/build.sh` builds outside the repo (interop/README.md): the Go client (stan.go
 * v0.10.4) and the Java client (java-nats-streaming 2.2.3), found by @stan-ts/testing's
 * `interopTool`. Both take the same flags and speak the same JSON lines, so one suite
 * ({@link describeInterop}) runs against each.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import type { InteropTool } from "@stan-ts/testing";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type Message, StanServerError } from "../src/index.js";
import { channel, client, iter, type TestServer, take, uniqueId, useServer } from "./helpers.js";

/** One delivery as the foreign client saw it. */
export interface ForeignDelivery {
  seq: number;
  data: Uint8Array;
  redelivered: boolean;
  subject: string;
}

interface Line {
  ready?: boolean;
  seq?: number;
  data?: string;
  redelivered?: boolean;
  subject?: string;
  done?: number;
  published?: number;
}

/** A running foreign-client process: its JSON lines as they come, and its end. */
class ForeignProcess {
  readonly deliveries: ForeignDelivery[] = [];
  readonly lines: Line[] = [];
  /** Resolves once the subscriber is subscribed (rejects if the process ends before). */
  readonly ready: Promise<void>;
  /** Resolves when the process exits with status 0, else rejects with its stderr. */
  readonly exited: Promise<void>;
  /** Called after each delivery line. */
  onDelivery: (() => void) | undefined;
  private readonly child: ChildProcess;
  private stderr = "";

  constructor(tool: InteropTool, flags: Record<string, string | number | boolean>) {
    const args = [...tool.prefix, ...Object.entries(flags).map(([k, v]) => `-${k}=${String(v)}`)];
    const what = `${tool.label} ${String(flags.mode)}`;
    this.child = spawn(tool.command, args, { stdio: ["pipe", "pipe", "pipe"] });
    this.child.stderr?.on("data", (b: Buffer) => {
      this.stderr += b.toString();
    });
    let subscribed!: () => void;
    const ready = new Promise<void>((r) => {
      subscribed = r;
    });
    const stdout = this.child.stdout;
    if (!stdout) throw new Error(`${what}: no stdout`);
    const lines = createInterface({ input: stdout });
    lines.on("line", (text) => {
      const l = JSON.parse(text) as Line;
      this.lines.push(l);
      if (l.ready) subscribed();
      if (l.seq !== undefined) {
        this.deliveries.push({
          seq: l.seq,
          data: new Uint8Array(Buffer.from(l.data ?? "", "base64")),
          redelivered: l.redelivered ?? false,
          subject: l.subject ?? "",
        });
        this.onDelivery?.();
      }
    });
    const drained = new Promise<void>((r) => lines.once("close", () => r()));
    this.exited = new Promise<void>((resolve, reject) => {
      this.child.once("error", (e) => reject(new Error(`${what}: cannot start: ${e.message}`)));
      this.child.once("exit", (code, signal) => {
        void drained.then(() => {
          if (code === 0) resolve();
          else reject(new Error(`${what} exited with ${code ?? signal}: ${this.stderr.trim()}`));
        });
      });
    });
    this.ready = Promise.race([
      ready,
      this.exited.then(() => {
        throw new Error(`${what} ended before it subscribed: ${this.stderr.trim()}`);
      }),
    ]);
    this.ready.catch(() => {}); // publishers never become ready
    running.add(this);
    this.exited.then(
      () => running.delete(this),
      () => running.delete(this),
    );
  }

  /** Writes JSON lines to the tool's stdin and ends it. */
  send(lines: string[]): void {
    const stdin = this.child.stdin;
    if (!stdin) throw new Error("the foreign client has no stdin");
    for (const l of lines) stdin.write(`${l}\n`);
    stdin.end();
  }

  /** Ends stdin: a subscriber started with `stdinstop` then closes and exits. */
  stop(): void {
    this.child.stdin?.end();
  }

  /** Ends the process at once (clean-up after a failed test). */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
  }
}

/** Rejects with `what` if `p` is not settled within `ms`. */
function within<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(what())), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

const running = new Set<ForeignProcess>();

/** Connection flags of a tool for the test server. */
function target(srv: TestServer, clientId: string): Record<string, string> {
  return { url: srv.url, cluster: srv.clusterId, client: clientId };
}

/** Publishes `payloads` in order from the foreign client (sync publishes unless `async`). */
export async function foreignPublish(
  tool: InteropTool,
  srv: TestServer,
  subject: string,
  payloads: Uint8Array[],
  opts: { clientId?: string; async?: boolean } = {},
): Promise<void> {
  const p = new ForeignProcess(tool, {
    mode: "pub",
    ...target(srv, opts.clientId ?? uniqueId("foreign-pub")),
    subject,
    async: opts.async ?? false,
  });
  p.send(payloads.map((d) => JSON.stringify({ data: Buffer.from(d).toString("base64") })));
  await p.exited;
  expect(p.lines.at(-1)?.published).toBe(payloads.length);
}

/** Subscription flags of the tools (interop/README.md). */
export interface ForeignSubscribe {
  clientId?: string;
  start?: "new" | "first" | "last" | "seq" | "time";
  durable?: string;
  queue?: string;
  manual?: boolean;
  inflight?: number;
  /** Exit after this many deliveries (acking each in manual mode). */
  expect?: number;
  /** Exit after this long without a delivery (Go duration syntax). @default "10s" */
  idle?: string;
  /** Also exit when stdin ends ({@link ForeignProcess.stop}). */
  stdinstop?: boolean;
}

/** Starts a foreign subscriber and resolves once it is subscribed. */
export async function foreignSubscribe(
  tool: InteropTool,
  srv: TestServer,
  subject: string,
  o: ForeignSubscribe,
): Promise<ForeignProcess> {
  const flags: Record<string, string | number | boolean> = {
    mode: "sub",
    ...target(srv, o.clientId ?? uniqueId("foreign-sub")),
    subject,
    start: o.start ?? "new",
    idle: o.idle ?? "10s",
  };
  if (o.durable) flags.durable = o.durable;
  if (o.queue) flags.queue = o.queue;
  if (o.manual) flags.manual = true;
  if (o.inflight) flags.inflight = o.inflight;
  if (o.expect !== undefined) flags.expect = o.expect;
  if (o.stdinstop) flags.stdinstop = true;
  const p = new ForeignProcess(tool, flags);
  await p.ready;
  return p;
}

/** Bytes 0..255, twice: every byte value, none of it valid as text. */
const binary = Uint8Array.from({ length: 512 }, (_, i) => i % 256);
const unicode = new TextEncoder().encode("héllo wörld ✓ 日本語 🚀 \u0000 end");
/** Room left under max_payload for the protocol's envelope (PubMsg / MsgProto fields). */
const ENVELOPE_ROOM = 1024;

/** The payloads every direction checks: binary, unicode, empty and one near max_payload. */
export function interopPayloads(maxPayload: number): Uint8Array[] {
  const big = new Uint8Array(maxPayload - ENVELOPE_ROOM);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) % 251;
  return [binary, unicode, new Uint8Array(0), big];
}

/**
 * The cross-language suite against one foreign client: exact payloads and sequences each way,
 * a durable handed over each way, and one queue group with members in both. Skips, with the
 * reason, when the tool is not built.
 */
export function describeInterop(tool: InteropTool): void {
  describe(`interop with the official ${tool.label} client`, () => {
    const srv = useServer();
    beforeAll(() => {
      if (tool.missing) console.warn(`skipping the ${tool.label} interop tests: ${tool.missing}`);
    });
    beforeEach((ctx) => {
      ctx.skip(tool.missing !== undefined, tool.missing);
    });
    afterAll(() => {
      for (const p of running) p.kill();
    });

    it("stan-ts publishes binary, unicode, empty and near-max_payload messages; the other client receives them exactly", async () => {
      await using sc = await client(srv());
      const ch = channel("interop");
      const payloads = interopPayloads(sc.nc.info?.max_payload ?? 1024 * 1024);
      for (const d of payloads) await sc.publish(ch, d);
      const sub = await foreignSubscribe(tool, srv(), ch, { start: "first", expect: 4 });
      await sub.exited;
      expect(sub.deliveries.map((d) => d.seq)).toEqual([1, 2, 3, 4]);
      expect(sub.deliveries.map((d) => d.subject)).toEqual([ch, ch, ch, ch]);
      expect(sub.deliveries.map((d) => d.data.length)).toEqual(payloads.map((p) => p.length));
      sub.deliveries.forEach((d, i) => {
        expect(Buffer.from(d.data).equals(Buffer.from(payloads[i] as Uint8Array))).toBe(true);
      });
    });

    it("the other client publishes the same messages; stan-ts receives them exactly", async () => {
      await using sc = await client(srv());
      const ch = channel("interop");
      const payloads = interopPayloads(sc.nc.info?.max_payload ?? 1024 * 1024);
      await foreignPublish(tool, srv(), ch, payloads);
      await using sub = await sc.subscribe(ch, { startAt: "first" });
      const got = await take(iter(sub), 4);
      expect(got.map((m) => m.sequence)).toEqual([1n, 2n, 3n, 4n]);
      expect(got.map((m) => m.subject)).toEqual([ch, ch, ch, ch]);
      got.forEach((m, i) => {
        expect(Buffer.from(m.data).equals(Buffer.from(payloads[i] as Uint8Array))).toBe(true);
      });
      expect(got[1]?.string()).toBe(new TextDecoder().decode(unicode));
    });

    it("asynchronous publishes from the other client keep their order and sequences", async () => {
      await using sc = await client(srv());
      const ch = channel("interop");
      const payloads = Array.from({ length: 200 }, (_, i) =>
        new TextEncoder().encode(`async-${i + 1}`),
      );
      await foreignPublish(tool, srv(), ch, payloads, { async: true });
      await using sub = await sc.subscribe(ch, { startAt: "first", maxInflight: 256 });
      const got = await take(iter(sub), 200);
      expect(got.map((m) => m.string())).toEqual(payloads.map((_, i) => `async-${i + 1}`));
      expect(got.map((m) => Number(m.sequence))).toEqual(payloads.map((_, i) => i + 1));
    });

    it("a durable started in stan-ts resumes in the other client under the same clientID", async () => {
      const ch = channel("interop");
      const clientId = uniqueId("handover");
      const sc = await client(srv(), { clientId });
      for (let i = 1; i <= 6; i++) await sc.publish(ch, `d-${i}`);
      const sub = await sc.subscribe(ch, {
        durableName: "hand",
        startAt: "first",
        manualAcks: true,
      });
      const first = await take(iter(sub), 3);
      for (const m of first) m.ack();
      await sc.close(); // #4..#6 delivered or pending, not acked: the durable keeps them
      const theirs = await foreignSubscribe(tool, srv(), ch, {
        clientId,
        durable: "hand",
        start: "first", // ignored on resume: the durable's position wins
        manual: true,
        expect: 3,
      });
      await theirs.exited;
      expect(theirs.deliveries.map((d) => d.seq)).toEqual([4, 5, 6]);
      expect(theirs.deliveries.map((d) => Buffer.from(d.data).toString())).toEqual([
        "d-4",
        "d-5",
        "d-6",
      ]);
    });

    it("a durable started in the other client resumes in stan-ts under the same clientID", async () => {
      const ch = channel("interop");
      const clientId = uniqueId("handover");
      {
        await using pub = await client(srv());
        for (let i = 1; i <= 6; i++) await pub.publish(ch, `d-${i}`);
      }
      // acks #1..#3 and exits (closing the subscription, which keeps the durable); a window of 3
      // keeps the rest on the server
      const theirs = await foreignSubscribe(tool, srv(), ch, {
        clientId,
        durable: "hand",
        start: "first",
        manual: true,
        inflight: 3,
        expect: 3,
      });
      await theirs.exited;
      expect(theirs.deliveries.map((d) => d.seq)).toEqual([1, 2, 3]);
      await using sc = await client(srv(), { clientId });
      await using sub = await sc.subscribe(ch, { durableName: "hand" });
      const got: Message[] = await take(iter(sub), 3);
      expect(got.map((m) => m.sequence)).toEqual([4n, 5n, 6n]);
      expect(got.map((m) => m.string())).toEqual(["d-4", "d-5", "d-6"]);
    });

    it("a live clientID held in one language is refused to the other, both ways", async () => {
      const ch = channel("interop");
      const ours = uniqueId("held");
      {
        await using _sc = await client(srv(), { clientId: ours });
        await expect(
          foreignPublish(tool, srv(), ch, [new Uint8Array(1)], { clientId: ours }),
        ).rejects.toThrow(/clientID already registered/);
      }
      const theirs = uniqueId("held");
      const holder = await foreignSubscribe(tool, srv(), ch, { clientId: theirs, stdinstop: true });
      const err = await client(srv(), { clientId: theirs }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StanServerError);
      expect((err as Error).message).toBe("stan: clientID already registered");
      holder.stop();
      await holder.exited;
    });

    it("one queue group with a member in each language, fed from both: every message exactly once", async () => {
      const ch = channel("interop");
      await using ours = await client(srv());
      const mine: number[] = [];
      let theirs: ForeignProcess | undefined;
      let allIn!: () => void;
      const all = new Promise<void>((r) => {
        allIn = r;
      });
      const count = () => mine.length + (theirs?.deliveries.length ?? 0);
      const check = () => {
        if (count() >= 40) allIn();
      };
      await using _member = await ours.subscribe(ch, {
        queue: "mixed",
        callback: (m) => {
          mine.push(Number(m.sequence));
          check();
        },
      });
      theirs = await foreignSubscribe(tool, srv(), ch, {
        queue: "mixed",
        stdinstop: true,
        idle: "30s",
      });
      theirs.onDelivery = check;
      for (let i = 1; i <= 20; i++) await ours.publish(ch, `q-${i}`);
      const second = Array.from({ length: 20 }, (_, i) => new TextEncoder().encode(`q-${i + 21}`));
      await foreignPublish(tool, srv(), ch, second);
      await within(all, 15_000, () => `the queue group got ${count()}/40 messages`);
      theirs.stop(); // closes its subscription and connection, then exits
      await theirs.exited;
      const seqs = [...mine, ...theirs.deliveries.map((d) => d.seq)].sort((a, b) => a - b);
      expect(seqs).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      expect(mine.length).toBeGreaterThan(0);
      expect(theirs.deliveries.length).toBeGreaterThan(0);
    });
  });
}
