/**
 * Where a healed non-durable subscription resumes, per start position and store (issue 15
 * item 5). The trigger: the streaming server restarts and M1, M2 are published on the new
 * server *before* the subscriber's session heals; then M3. Nothing published while the
 * subscriber was away may be skipped, and nothing already delivered is delivered again.
 */
import { skipWithoutServerControl } from "@stan-ts/testing";
import { connect as natsConnect } from "nats";
import { describe, expect, it, vi } from "vitest";
import {
  connect,
  type Message,
  type NatsConnectionLike,
  type StanConnection,
  type StartAt,
  type Status,
  type Subscription,
} from "../src/index.js";
import { channel, client, iter, publishN, startServer, take, uniqueId } from "./helpers.js";

type Store = "memory" | "file";

/** Pings that notice a loss within half a second, and quick heal attempts. */
const fastHeal = {
  pingInterval: 200,
  pingMaxOut: 2,
  reconnect: { initialDelay: 50, maxDelay: 250 },
} as const;

function when(sc: StanConnection, type: Status["type"]): Promise<Status> {
  return (async () => {
    for await (const s of sc.status()) if (s.type === type) return s;
    throw new Error(`connection ended before "${type}"`);
  })();
}

/**
 * A NATS connection whose connect requests to the streaming server (the heal's) wait while
 * `gate.closed`: the test decides when the heal may register again.
 */
async function gatedConnection(url: string, discover: string) {
  const raw = await natsConnect({ servers: url, maxReconnectAttempts: -1 });
  let open: () => void = () => {};
  let opened = Promise.resolve();
  const gate = {
    close() {
      opened = new Promise<void>((r) => {
        open = r;
      });
    },
    open: () => open(),
  };
  const nc: NatsConnectionLike = {
    get info() {
      return raw.info;
    },
    publish: (subject, payload, opts) => raw.publish(subject, payload, opts),
    request: async (subject, payload, opts) => {
      if (subject === discover) await opened;
      return raw.request(subject, payload, { timeout: opts?.timeout ?? 2000 });
    },
    flush: () => raw.flush(),
    closed: () => raw.closed(),
    isClosed: () => raw.isClosed(),
    close: () => raw.close(),
    subscribe: (subject, opts) => raw.subscribe(subject, opts),
  };
  return { nc, gate, raw };
}

const texts = (ms: Message[]) => ms.map((m) => m.string());

interface Case {
  name: string;
  startAt: () => StartAt;
  /** Published before subscribing (the start position excludes them). */
  history?: number;
  /** Published after subscribing and received before the outage. */
  before: number;
  /** What arrives after the heal when it is not M-1, M-2, M-3. */
  after?: Partial<Record<Store, string[]>>;
}

/** Waits until the clock has moved past the last publish's timestamp (ms granularity of Date). */
async function clockTick(): Promise<void> {
  const until = Date.now() + 2;
  while (Date.now() < until) await new Promise((r) => setImmediate(r));
}

const cases: Case[] = [
  // received something before the outage: resumes after the last one received
  { name: "first, after receiving", startAt: () => "first", before: 2 },
  { name: "new-only, after receiving", startAt: () => "new-only", before: 2 },
  { name: "last-received, after receiving", startAt: () => "last-received", before: 2 },
  { name: "sequence, after receiving", startAt: () => ({ sequence: 1 }), before: 2 },
  {
    name: "time, after receiving",
    startAt: () => ({ time: new Date(Date.now() - 60_000) }),
    before: 2,
  },
  { name: "ago, after receiving", startAt: () => ({ ago: 60_000 }), before: 2 },
  // received nothing before the outage: the original start is asked for again
  { name: "first, nothing received", startAt: () => "first", before: 0 },
  { name: "new-only, nothing received", startAt: () => "new-only", history: 1, before: 0 },
  { name: "last-received, nothing received", startAt: () => "last-received", before: 0 },
  { name: "time, nothing received", startAt: () => ({ time: new Date() }), history: 1, before: 0 },
  { name: "ago, nothing received", startAt: () => ({ ago: 0 }), history: 1, before: 0 },
  // asked for the next sequence, or one beyond it: the server started after its last one
  { name: "sequence, nothing received", startAt: () => ({ sequence: 2 }), history: 1, before: 0 },
  {
    name: "sequence beyond the last, nothing received",
    startAt: () => ({ sequence: 10 }),
    history: 1,
    before: 0,
  },
];

async function resumeAll(store: Store): Promise<void> {
  await using server = await startServer(store === "file" ? { store: "file" } : {});
  const discover = `_STAN.discover.${server.clusterId}`;
  const gated = await gatedConnection(server.url, discover);
  try {
    const sc = await connect({
      clusterId: server.clusterId,
      clientId: uniqueId("resume"),
      nc: gated.nc,
      ...fastHeal,
    });
    await using pub = await client(server, { reconnect: false });
    const subs: Array<{ c: Case; ch: string; sub: Subscription; it: AsyncIterator<Message> }> = [];
    for (const c of cases) {
      const ch = channel("resume");
      if (c.history) {
        await publishN(pub, ch, c.history, "H");
        await clockTick();
      }
      const sub = await sc.subscribe(ch, { startAt: c.startAt(), maxInflight: 64 });
      const it = iter(sub);
      await publishN(pub, ch, c.before, "P");
      expect(texts(await take(it, c.before)), c.name).toEqual(
        Array.from({ length: c.before }, (_, i) => `P-${i + 1}`),
      );
      subs.push({ c, ch, sub, it });
    }
    await pub.close();

    gated.gate.close(); // the heal will wait for the test
    const disconnected = when(sc, "disconnected");
    await server.stop();
    await disconnected;
    await server.restart();
    // M1 and M2 reach the new server before the subscriber's session heals
    {
      await using late = await client(server, { reconnect: false });
      for (const { ch } of subs) await publishN(late, ch, 2, "M");
    }
    const reconnected = when(sc, "reconnected");
    gated.gate.open();
    await reconnected;
    {
      await using late = await client(server, { reconnect: false });
      for (const { ch } of subs) await late.publish(ch, "M-3");
    }
    for (const { c, it } of subs) {
      const want = c.after?.[store] ?? ["M-1", "M-2", "M-3"];
      const got = await take(it, want.length, 10_000).catch((e: Error) => {
        throw new Error(`${store}/${c.name}: ${e.message}`);
      });
      expect(texts(got), `${store}/${c.name}`).toEqual(want);
    }
    // nothing more: no message delivered twice
    for (const { c, sub } of subs) expect(sub.pending, `${store}/${c.name}`).toBe(0);
    await sc.close();
  } finally {
    await gated.raw.close();
  }
}

describe("issue 15 item 5: a healed non-durable resumes without skipping (M1, M2 stored before the heal)", () => {
  it("file store: every start position", { timeout: 60_000 }, async (ctx) => {
    skipWithoutServerControl(ctx);
    await resumeAll("file");
  });

  it("memory store (sequences restart at 1): every start position", {
    timeout: 60_000,
  }, async (ctx) => {
    skipWithoutServerControl(ctx);
    await resumeAll("memory");
  });
});

describe("issue 15 item 11: a paused non-durable's buffer stays within maxInflight across heals", () => {
  it("file store: four heals with a full buffer; then every message once, in order", {
    timeout: 60_000,
  }, async (ctx) => {
    skipWithoutServerControl(ctx);
    await using server = await startServer({ store: "file" });
    await using sc = await client(server, fastHeal);
    const ch = channel("window");
    {
      await using pub = await client(server, { reconnect: false });
      await publishN(pub, ch, 100);
    }
    const maxInflight = 20;
    const sub = await sc.subscribe(ch, { startAt: "first", maxInflight });
    const full = async (what: string) => {
      await vi.waitFor(() => expect(sub.pending, what).toBe(maxInflight), { timeout: 10_000 });
      // an absence: whatever the server sends after a fresh window would arrive within this
      await new Promise((r) => setTimeout(r, 300));
      expect(sub.pending, what).toBe(maxInflight);
    };
    await full("before any heal");
    for (let heal = 1; heal <= 4; heal++) {
      const reconnected = when(sc, "reconnected");
      const disconnected = when(sc, "disconnected");
      await server.stop();
      await disconnected;
      await server.restart();
      await reconnected;
      await full(`after heal ${heal}`); // the old code: 40, 60, 80, 100
    }
    const got = await take(iter(sub), 100);
    expect(got.map((m) => m.sequence)).toEqual(
      Array.from({ length: 100 }, (_, i) => BigInt(i + 1)),
    );
    expect(got.every((m) => m.string() === `m-${Number(m.sequence)}`)).toBe(true);
  });
});

describe("issue 15 item 11, memory store: what the buffer held survives a restart", () => {
  it("held messages are handed out though the restarted server has none, then new ones", {
    timeout: 30_000,
  }, async (ctx) => {
    skipWithoutServerControl(ctx);
    await using server = await startServer();
    await using sc = await client(server, { ...fastHeal, connectTimeout: 500 });
    const ch = channel("held");
    {
      await using pub = await client(server, { reconnect: false });
      await publishN(pub, ch, 30);
    }
    const sub = await sc.subscribe(ch, { startAt: "first", maxInflight: 10 });
    await vi.waitFor(() => expect(sub.pending).toBe(10));
    const reconnected = when(sc, "reconnected");
    await server.restart(); // forgets the channel: messages 11..30 are gone with it
    await reconnected;
    const it = iter(sub);
    const got = await take(it, 10);
    expect(texts(got)).toEqual(Array.from({ length: 10 }, (_, i) => `m-${i + 1}`));
    await sc.publish(ch, "new");
    const [fresh] = await take(it, 1);
    expect([fresh?.string(), fresh?.sequence]).toEqual(["new", 1n]);
    expect(sub.pending).toBe(0);
  });
});

describe("issue 15: acks and state during a heal", () => {
  it("file store: a durable's message acked during the heal is not handed out again, nor redelivered later", {
    timeout: 30_000,
  }, async (ctx) => {
    skipWithoutServerControl(ctx);
    await using server = await startServer({ store: "file" });
    await using sc = await client(server, fastHeal);
    const ch = channel("ackheal");
    const opts = { durableName: "acker", startAt: "first", manualAcks: true } as const;
    const sub = await sc.subscribe(ch, opts);
    const it = iter(sub);
    await sc.publish(ch, "one");
    const [one] = await take(it, 1);
    const disconnected = when(sc, "disconnected");
    await server.stop();
    await disconnected;
    expect(sc.isOpen).toBe(true);
    expect(sc.isReconnecting).toBe(true);
    one?.ack(); // during the heal: kept for the new ack inbox
    expect(one?.acked).toBe(true);
    const reconnected = when(sc, "reconnected");
    await server.restart();
    await reconnected;
    expect(sc.isReconnecting).toBe(false);
    await sc.publish(ch, "two");
    // the server redelivers "one" (unacked when it went down): dropped, the app acked it
    const [two] = await take(it, 1);
    expect(two?.string()).toBe("two");
    expect(two?.redelivered).toBe(false);
    two?.ack();
    await sc.publish(ch, "sync"); // a PubAck after the acks: the server has applied them
    await take(it, 1).then(([m]) => m?.ack());
    await sc.publish(ch, "sync-2");
    await sub.close();
    // the durable resumes: "one" was acked on the server too, so it is not redelivered
    const again = await sc.subscribe(ch, opts);
    const [next] = await take(iter(again), 1);
    expect(next?.string()).toBe("sync-2");
    await again.close();
  });

  it("a subscribe's signal bounds the call only: aborting it later leaves the subscription running", async () => {
    await using server = await startServer();
    await using sc = await client(server);
    const ch = channel("signal");
    const ac = new AbortController();
    const sub = await sc.subscribe(ch, { signal: ac.signal, timeout: 5000 });
    ac.abort();
    await sc.publish(ch, "after-abort");
    const [m] = await take(iter(sub), 1);
    expect(m?.string()).toBe("after-abort");
    expect(sub.isClosed).toBe(false);
    await sub.close();
  });
});
