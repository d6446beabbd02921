/**
 * Conformance through a client we did not write: the official `node-nats-streaming` 0.3.2.
 */
import {
  type StreamingServerHandle,
  skipWithoutServerControl,
  streamingServer,
} from "@stan-ts/testing";
import stan, { type Message, type Stan, type Subscription } from "node-nats-streaming";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RawClient, uid, until } from "./helpers.js";

/** The suite runs once per store. */
const STORES = ["memory", "file"] as const;

describe.each(STORES)("%s store", (store) => {
  let server: StreamingServerHandle;
  const open: Stan[] = [];

  beforeAll(async () => {
    server = await streamingServer({ store, hbInterval: 200, hbTimeout: 200, hbFailCount: 2 });
  });
  afterAll(async () => {
    for (const sc of open) await closeClient(sc);
    await server?.[Symbol.asyncDispose]();
  });

  function connectOfficial(clientID = uid(), opts: stan.StanOptions = {}): Promise<Stan> {
    return new Promise((resolve, reject) => {
      const sc = stan.connect(server.clusterId, clientID, { url: server.url, ...opts });
      sc.once("connect", () => {
        open.push(sc);
        resolve(sc);
      });
      sc.once("error", (err: Error | string) =>
        reject(typeof err === "string" ? new Error(err) : err),
      );
    });
  }

  function closeClient(sc: Stan): Promise<void> {
    return new Promise((resolve) => {
      // isClosed() exists at runtime but is missing from the package typings
      if ((sc as unknown as { isClosed(): boolean }).isClosed()) return resolve();
      sc.once("close", () => resolve());
      sc.once("error", () => resolve());
      sc.close();
    });
  }

  function publish(sc: Stan, subject: string, data: string): Promise<string> {
    return new Promise((resolve, reject) =>
      sc.publish(subject, data, (err, guid) => (err ? reject(err) : resolve(guid))),
    );
  }

  async function publishMany(sc: Stan, subject: string, n: number, prefix = "m"): Promise<void> {
    await Promise.all(Array.from({ length: n }, (_, i) => publish(sc, subject, `${prefix}${i}`)));
  }

  interface Collected {
    sub: Subscription;
    msgs: Message[];
    seqs(): number[];
    waitFor(n: number, timeout?: number): Promise<void>;
  }

  function subscribe(
    sc: Stan,
    subject: string,
    opts: stan.SubscriptionOptions,
    qGroup?: string,
    onMsg?: (m: Message) => void,
  ): Promise<Collected> {
    const sub = qGroup ? sc.subscribe(subject, qGroup, opts) : sc.subscribe(subject, opts);
    const msgs: Message[] = [];
    sub.on("message", (m: Message) => {
      msgs.push(m);
      onMsg?.(m);
    });
    const c: Collected = {
      sub,
      msgs,
      seqs: () => msgs.map((m) => m.getSequence()),
      waitFor: (n, timeout = 5000) => until(() => msgs.length >= n, timeout, `${n} messages`),
    };
    return new Promise((resolve, reject) => {
      sub.once("ready", () => resolve(c));
      sub.once("error", (err: Error) => reject(err));
    });
  }

  function subError(sc: Stan, subject: string, opts: stan.SubscriptionOptions, qGroup?: string) {
    return subscribe(sc, subject, opts, qGroup).then(
      () => "",
      (e: Error) => e.message,
    );
  }

  function closeSub(c: Collected, unsubscribe = false): Promise<void> {
    return new Promise((resolve, reject) => {
      c.sub.once(unsubscribe ? "unsubscribed" : "closed", () => resolve());
      c.sub.once("error", reject);
      if (unsubscribe) c.sub.unsubscribe();
      else c.sub.close();
    });
  }

  describe("official node-nats-streaming client", () => {
    it("publishes and replays from every start position", async () => {
      const sc = await connectOfficial();
      const ch = uid("i.start.");
      await publishMany(sc, ch, 5);
      const o = () => sc.subscriptionOptions();
      const all = await subscribe(sc, ch, o().setDeliverAllAvailable());
      const last = await subscribe(sc, ch, o().setStartWithLastReceived());
      const fromSeq = await subscribe(sc, ch, o().setStartAtSequence(3));
      const fromTime = await subscribe(sc, ch, o().setStartAtTimeDelta(60_000));
      const newOnly = await subscribe(sc, ch, o());
      await publish(sc, ch, "six");
      await all.waitFor(6);
      await last.waitFor(2);
      await fromSeq.waitFor(4);
      await fromTime.waitFor(6);
      await newOnly.waitFor(1);
      expect(all.seqs()).toEqual([1, 2, 3, 4, 5, 6]);
      expect(last.seqs()).toEqual([5, 6]);
      expect(fromSeq.seqs()).toEqual([3, 4, 5, 6]);
      expect(fromTime.seqs()).toEqual([1, 2, 3, 4, 5, 6]);
      expect(newOnly.seqs()).toEqual([6]);
      expect(newOnly.msgs[0]!.getData()).toBe("six");
      expect(newOnly.msgs[0]!.getSubject()).toBe(ch);
      await closeClient(sc);
    });

    it("resumes a durable across a client restart, redelivering what was not acked", async () => {
      const id = uid();
      const ch = uid("i.dur.");
      let sc = await connectOfficial(id);
      const opts = () =>
        sc
          .subscriptionOptions()
          .setDurableName("dur")
          .setDeliverAllAvailable()
          .setManualAckMode(true)
          .setAckWait(30_000);
      const d = await subscribe(sc, ch, opts());
      await publishMany(sc, ch, 4);
      await d.waitFor(4);
      d.msgs[0]!.ack();
      d.msgs[1]!.ack();
      await closeClient(sc);
      sc = await connectOfficial(id);
      const pub = await connectOfficial();
      await publish(pub, ch, "later");
      const r = await subscribe(sc, ch, opts());
      await r.waitFor(3);
      expect(r.seqs()).toEqual([3, 4, 5]);
      expect(r.msgs.map((m) => m.isRedelivered())).toEqual([true, true, false]);
      for (const m of r.msgs) m.ack();
      await closeSub(r, true);
      await closeClient(sc);
      await closeClient(pub);
    });

    it("queue group: one member per message, pending handed over when a member leaves", async () => {
      const sc = await connectOfficial();
      const ch = uid("i.q.");
      const o = () => sc.subscriptionOptions().setManualAckMode(true).setMaxInFlight(100);
      const a = await subscribe(sc, ch, o(), "workers");
      const b = await subscribe(sc, ch, o(), "workers", (m) => m.ack());
      await publishMany(sc, ch, 10);
      await until(() => a.msgs.length + b.msgs.length === 10, 5000, "10 deliveries");
      const seen = [...a.seqs(), ...b.seqs()].sort((x, y) => x - y);
      expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(a.msgs.length).toBeGreaterThan(0);
      expect(b.msgs.length).toBeGreaterThan(0);
      const aSeqs = a.seqs();
      const before = b.msgs.length;
      await closeSub(a);
      await b.waitFor(before + aSeqs.length);
      const moved = b.msgs.slice(before);
      expect(moved.map((m) => m.getSequence()).sort((x, y) => x - y)).toEqual(aSeqs);
      expect(moved.every((m) => m.isRedelivered())).toBe(true);
      await closeClient(sc);
    });

    it("durable queue group keeps its position when the last member closes", async () => {
      const sc = await connectOfficial();
      const ch = uid("i.dq.");
      const o = () => sc.subscriptionOptions().setDurableName("dq").setDeliverAllAvailable();
      const a = await subscribe(sc, ch, o(), "g");
      await publishMany(sc, ch, 2);
      await a.waitFor(2);
      await closeSub(a);
      await publishMany(sc, ch, 2, "late");
      const b = await subscribe(sc, ch, o(), "g");
      await b.waitFor(2);
      expect(b.seqs()).toEqual([3, 4]);
      await closeSub(b, true);
      await closeClient(sc);
    });

    it("redelivers after ackWait without an ack, with the redelivered flag", async () => {
      const sc = await connectOfficial();
      const ch = uid("i.redeliv.");
      const s = await subscribe(
        sc,
        ch,
        sc.subscriptionOptions().setManualAckMode(true).setAckWait(1000),
      );
      const t0 = Date.now();
      await publish(sc, ch, "x");
      await s.waitFor(2, 4000);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
      expect(s.msgs[1]!.isRedelivered()).toBe(true);
      expect(s.msgs[1]!.getSequence()).toBe(1);
      s.msgs[1]!.ack();
      await closeSub(s, true);
      await closeClient(sc);
    });

    it("stalls at maxInFlight and releases on ack", async () => {
      const sc = await connectOfficial();
      const ch = uid("i.mif.");
      await publishMany(sc, ch, 6);
      const s = await subscribe(
        sc,
        ch,
        sc.subscriptionOptions().setDeliverAllAvailable().setManualAckMode(true).setMaxInFlight(2),
      );
      await s.waitFor(2);
      await publish(sc, "i.barrier", "b"); // PubAcks travel behind deliveries
      expect(s.seqs()).toEqual([1, 2]);
      s.msgs[0]!.ack();
      await s.waitFor(3);
      await publish(sc, "i.barrier", "b");
      expect(s.seqs()).toEqual([1, 2, 3]);
      for (const m of s.msgs.slice(1)) m.ack();
      await s.waitFor(5);
      await closeSub(s, true);
      await closeClient(sc);
    });

    it("duplicate clientID: refused while alive, accepted once the old one is dead", async () => {
      const id = uid();
      const live = await connectOfficial(id);
      await expect(connectOfficial(id)).rejects.toThrow("stan: clientID already registered");
      // kill the old client's NATS connection without a close request: it is dead
      (live as unknown as { nc: { close(): void } }).nc.close();
      const t0 = Date.now();
      const replacement = await connectOfficial(id);
      expect(Date.now() - t0).toBeLessThan(1500);
      await closeClient(replacement);
    });

    it("evicts a client whose heartbeats fail", async (ctx) => {
      skipWithoutServerControl(ctx); // needs the harness's short heartbeat options
      const id = uid();
      const sc = await connectOfficial(id);
      (sc as unknown as { nc: { close(): void } }).nc.close();
      const raw = await RawClient.connect(server.url, server.clusterId, uid());
      let err = "";
      await until(
        () => {
          raw.closeRequest(id).then(
            (e) => {
              err = e;
            },
            () => {},
          );
          return err === "stan: unknown clientID";
        },
        5000,
        "eviction",
      );
      await raw.close();
    });

    it("a replaced client learns it from its pings (connection_lost)", async () => {
      const id = uid();
      const sc = await connectOfficial(id, { stanPingInterval: 1000 });
      const lost = new Promise<string>((resolve) =>
        // node-nats-streaming passes the server's text as a plain string
        sc.once("connection_lost", (e: Error | string) => resolve(String(e))),
      );
      const raw = await RawClient.connect(server.url, server.clusterId, uid());
      expect(await raw.closeRequest(id)).toBe("");
      expect(await lost).toBe("client has been replaced or is no longer registered");
      await raw.close();
    });

    it("surfaces the official error strings", async () => {
      const sc = await connectOfficial();
      const ch = uid("i.err.");
      const o = () => sc.subscriptionOptions();
      expect(await subError(sc, "i.err.*", o())).toBe("stan: invalid subject");
      expect(await subError(sc, ch, o().setDurableName("a:b"), "g")).toBe(
        "stan: durable name of a durable queue subscriber can't contain the character ':'",
      );
      const d = await subscribe(sc, ch, o().setDurableName("d"));
      expect(await subError(sc, ch, o().setDurableName("d"))).toBe(
        "stan: duplicate durable registration",
      );
      await closeSub(d, true);
      await closeClient(sc);
      await expect(connectOfficial("bad.id")).rejects.toThrow(
        "stan: invalid clientID: only alphanumeric and `-` or `_` characters allowed",
      );
    });
  });
});
