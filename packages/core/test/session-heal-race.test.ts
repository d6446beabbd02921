/**
 * Issue 15's race test: close / subscribe / unsubscribe / sub.close / publish at random
 * points of heals, against a fake streaming server that keeps client and durable state (as
 * a file store does across its outages) and whose connect and subscribe replies are delayed,
 * lost, or whose requests are lost, at random. Seeded (STAN_RACE_SEED=n repeats a run; the
 * seed is printed). For a bounded time; checks: every call settles by its deadline, no
 * unhandled rejection, no zombie session, no lost durable operation.
 */
import {
  CloseRequestSchema,
  CloseResponseSchema,
  ConnectRequestSchema,
  ConnectResponseSchema,
  decode,
  encode,
  PingResponseSchema,
  PingSchema,
  PubAckSchema,
  PubMsgSchema,
  StartPosition,
  SubscriptionRequestSchema,
  SubscriptionResponseSchema,
  UnsubscribeRequestSchema,
} from "@stan-ts/proto";
import { seededRandom } from "@stan-ts/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  type CoreSubscription,
  Session,
  type SessionEvent,
  type SubscribeParams,
} from "../src/index.js";
import { FakeNats } from "./fake-nats.js";
import { options } from "./session-fixtures.js";

interface ServerSub {
  clientID: string;
  subject: string;
  durableName: string;
  inbox: string;
  ackInbox: string;
  online: boolean;
}

const C = "test-cluster";
const S = {
  discover: `_STAN.discover.${C}`,
  pings: `_STAN.discover.${C}.pings`,
  sub: `_STAN.sub.${C}`,
  unsub: `_STAN.unsub.${C}`,
  subclose: `_STAN.subclose.${C}`,
  close: `_STAN.close.${C}`,
  pub: `_STAN.pub.${C}.a`,
};

/**
 * A streaming server with state: registrations (probing the old heartbeat inbox on a
 * duplicate, as the real one does), durables that outlive their subscriptions, non-durables
 * that die with their client. Faults: `stop()`/`start()` (no responders), and on the connect
 * and subscribe subjects random delays and lost requests or replies.
 */
class StatefulServer {
  readonly clients = new Map<string, { hbInbox: string; connID: string }>();
  readonly subs = new Map<string, ServerSub>(); // by ack inbox
  private handlers: Array<{ unsubscribe(): void }> = [];
  private seq = 0;
  private timers = 0;
  faults = true;

  constructor(
    private readonly nc: FakeNats,
    private readonly rnd: () => number,
  ) {
    this.start();
  }

  get busy(): number {
    return this.timers;
  }

  durable(clientID: string, name: string): ServerSub | undefined {
    for (const s of this.subs.values()) {
      if (s.clientID === clientID && s.durableName === name && s.subject === "a") return s;
    }
    return undefined;
  }

  start(): void {
    if (this.handlers.length > 0) return;
    const on = (subject: string, fn: (data: Uint8Array, reply: string) => void) =>
      this.nc.subscribe(subject, { callback: (_e, m) => fn(m.data, m.reply ?? "") });
    this.handlers = [
      on(S.discover, (d, r) => this.faulty(() => this.connect(d), r)),
      on(S.sub, (d, r) => this.faulty(() => this.subscribe(d), r)),
      on(S.pings, (d, r) => this.reply(r, this.ping(d))),
      on(S.unsub, (d, r) => this.reply(r, this.endSub(d, true))),
      on(S.subclose, (d, r) => this.reply(r, this.endSub(d, false))),
      on(S.close, (d, r) => this.reply(r, this.close(d))),
      on(S.pub, (d, r) => {
        const guid = decode(PubMsgSchema, d).guid;
        this.reply(r, encode(PubAckSchema, { guid }));
      }),
    ];
  }

  stop(): void {
    for (const h of this.handlers) h.unsubscribe();
    this.handlers = [];
  }

  private reply(to: string, data: Uint8Array | Promise<Uint8Array>): void {
    if (!to) return;
    void Promise.resolve(data).then((d) => {
      if (this.handlers.length > 0 && !this.nc.isClosed()) this.nc.publish(to, d);
    });
  }

  /** Runs a request now, later, or never, and answers it now, later, or never. */
  private faulty(work: () => Uint8Array | Promise<Uint8Array>, reply: string): void {
    const r = this.rnd();
    if (!this.faults || r < 0.55) {
      this.reply(reply, work());
      return;
    }
    if (r < 0.62) return; // the request is lost
    const delay = Math.floor(this.rnd() * 120);
    const loseReply = r > 0.93;
    this.later(delay, () => {
      const answer = work();
      if (!loseReply) this.reply(reply, answer);
    });
  }

  later(ms: number, fn: () => void): void {
    this.timers++;
    setTimeout(() => {
      this.timers--;
      fn();
    }, ms);
  }

  private async connect(d: Uint8Array): Promise<Uint8Array> {
    const req = decode(ConnectRequestSchema, d);
    const old = this.clients.get(req.clientID);
    if (old) {
      const alive = await this.nc.request(old.hbInbox, new Uint8Array(0), { timeout: 50 }).then(
        () => true,
        () => false,
      );
      if (alive) {
        return encode(ConnectResponseSchema, { error: "stan: clientID already registered" });
      }
      this.dropClient(req.clientID);
    }
    this.clients.set(req.clientID, {
      hbInbox: req.heartbeatInbox,
      connID: new TextDecoder().decode(req.connID),
    });
    return encode(ConnectResponseSchema, {
      pubPrefix: `_STAN.pub.${C}`,
      subRequests: S.sub,
      unsubRequests: S.unsub,
      subCloseRequests: S.subclose,
      closeRequests: S.close,
      pingRequests: S.pings,
      pingInterval: 1,
      pingMaxOut: 3,
      protocol: 1,
    });
  }

  /** A client goes: its non-durables with it, its durables offline. */
  private dropClient(clientID: string): void {
    this.clients.delete(clientID);
    for (const [k, s] of this.subs) {
      if (s.clientID !== clientID) continue;
      if (s.durableName) s.online = false;
      else this.subs.delete(k);
    }
  }

  private ping(d: Uint8Array): Uint8Array {
    const connID = new TextDecoder().decode(decode(PingSchema, d).connID);
    const known = [...this.clients.values()].some((c) => c.connID === connID);
    return encode(PingResponseSchema, {
      error: known ? "" : "stan: client has been replaced or is no longer registered",
    });
  }

  private subscribe(d: Uint8Array): Uint8Array {
    const req = decode(SubscriptionRequestSchema, d);
    const fail = (error: string) => encode(SubscriptionResponseSchema, { error });
    if (!this.clients.has(req.clientID)) return fail("stan: unknown clientID");
    const ackInbox = `_ACKS.${++this.seq}`;
    if (req.durableName) {
      const existing = this.durable(req.clientID, req.durableName);
      if (existing?.online) return fail("stan: duplicate durable registration");
      if (existing) this.subs.delete(existing.ackInbox);
    }
    this.subs.set(ackInbox, {
      clientID: req.clientID,
      subject: req.subject,
      durableName: req.durableName,
      inbox: req.inbox,
      ackInbox,
      online: true,
    });
    return encode(SubscriptionResponseSchema, { ackInbox });
  }

  private endSub(d: Uint8Array, unsubscribe: boolean): Uint8Array {
    const req = decode(UnsubscribeRequestSchema, d);
    const s = this.subs.get(req.inbox);
    if (!s || s.clientID !== req.clientID || !s.online) {
      return encode(SubscriptionResponseSchema, { error: "stan: invalid subscription" });
    }
    if (unsubscribe || !s.durableName) this.subs.delete(req.inbox);
    else s.online = false;
    return encode(SubscriptionResponseSchema, {});
  }

  private close(d: Uint8Array): Uint8Array {
    const req = decode(CloseRequestSchema, d);
    if (!this.clients.has(req.clientID)) {
      return encode(CloseResponseSchema, { error: "stan: unknown clientID" });
    }
    this.dropClient(req.clientID);
    return encode(CloseResponseSchema, {});
  }
}

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
beforeEach(() => {
  process.on("unhandledRejection", onUnhandled);
});
afterEach(() => {
  process.off("unhandledRejection", onUnhandled);
});

const CALL_MS = 300;
/**
 * Every call here is bounded by CALL_MS (an unsubscribe that waited for a heal by at most
 * twice that); the margin is for a loaded machine. A hang is a call still pending after it.
 */
const DEADLINE_MS = CALL_MS * 3 + 1500;

describe("issue 15: calls at random points of heals", () => {
  it("every call settles in time, no unhandled rejection, no zombie session, no lost durable operation", {
    timeout: 30_000,
  }, async () => {
    const seed = Number(process.env.STAN_RACE_SEED ?? Date.now() % 1_000_000);
    console.log(`session-heal-race seed ${seed} (STAN_RACE_SEED=${seed} repeats it)`);
    const rnd = seededRandom(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
    const failures: string[] = [];
    const stats = { ops: 0, settledOk: 0, heals: 0, rounds: 0, duringHeal: 0 };
    const endAt = Date.now() + 4000;

    for (let round = 0; Date.now() < endAt; round++) {
      stats.rounds++;
      const nc = new FakeNats();
      const server = new StatefulServer(nc, rnd);
      const clientId = `race-${round}`;
      server.faults = false; // the first connect gets through
      const session = await Session.open(
        nc,
        options({
          clientId,
          connectTimeout: 400,
          pubAckTimeout: 400,
          pingInterval: 40,
          pingMaxOut: 2,
          reconnect: { initialDelay: 5, maxDelay: 40 },
        }),
      );
      server.faults = true;
      session.onEvent((e: SessionEvent) => {
        if (e.type === "reconnected") stats.heals++;
        if (e.type === "resubscribe-failed") {
          failures.push(`round ${round}: resubscribe-failed ${e.error.message}`);
        }
      });

      // One operation at a time per durable name, so each name's history is a sequence.
      const names = ["d0", "d1", "d2", "n0"] as const;
      const live = new Map<string, CoreSubscription>();
      const busy = new Set<string>();
      /** The last operation on each name and whether it succeeded (undefined: not known). */
      const last = new Map<string, { op: string; ok: boolean }>();
      const running: Promise<void>[] = [];
      const track = (what: string, p: Promise<unknown>, after?: (ok: boolean) => void) => {
        stats.ops++;
        if (session.isReconnecting) stats.duringHeal++;
        let timer: ReturnType<typeof setTimeout> | undefined;
        const late = new Promise<"late">((r) => {
          timer = setTimeout(() => r("late"), DEADLINE_MS);
        });
        running.push(
          Promise.race([
            p.then(
              () => true,
              () => false,
            ),
            late,
          ]).then((r) => {
            clearTimeout(timer);
            if (r === "late") {
              failures.push(`round ${round}: ${what} still pending after ${DEADLINE_MS} ms`);
              return;
            }
            if (r) stats.settledOk++;
            after?.(r);
          }),
        );
      };
      const params = (name: string): SubscribeParams => ({
        subject: "a",
        durableName: name.startsWith("d") ? name : undefined,
        maxInflight: 8,
        ackWaitSecs: 30,
        startPosition: StartPosition.First,
      });
      const sink = { deliver: () => {}, end: () => {} };
      const call = () => ({ timeout: CALL_MS });
      const reconnecting = () => session.isReconnecting;

      const roundEnd = Date.now() + 500 + Math.floor(rnd() * 500);
      let closing: Promise<void> | undefined;
      while (Date.now() < roundEnd && !closing) {
        const r = rnd();
        if (r < 0.12) {
          // an outage: the streaming server goes away for a while
          server.stop();
          server.later(60 + Math.floor(rnd() * 240), () => server.start());
        } else if (r < 0.45) {
          track("publish", session.publish("a", new Uint8Array([1]), call()));
        } else if (r < 0.98) {
          const name = pick(names);
          if (!busy.has(name)) {
            busy.add(name);
            const sub = live.get(name);
            if (!sub) {
              const p = session.subscribe(params(name), sink, call());
              track(`subscribe ${name}`, p, (ok) => {
                busy.delete(name);
                last.set(name, { op: "subscribe", ok });
              });
              void p.then(
                (s) => live.set(name, s),
                () => {},
              );
            } else {
              const unsubscribe = rnd() < 0.5;
              live.delete(name);
              track(
                `${unsubscribe ? "unsubscribe" : "close"} ${name}`,
                sub.end(unsubscribe, call()),
                (ok) => {
                  busy.delete(name);
                  last.set(name, { op: unsubscribe ? "unsubscribe" : "close", ok });
                },
              );
            }
          }
        } else {
          closing = session.close(call());
          track("sc.close", closing);
        }
        await new Promise((res) => setTimeout(res, Math.floor(rnd() * 25)));
      }
      if (!closing) {
        // Faults stop; once the calls settled and the session healed, the client and the
        // server must agree on every subscription: each one a subscribe() resolved is online
        // on the server with the client's inboxes, and every delivery inbox the server sends
        // to belongs to one of them (a durable whose unsubscribe gave up was not re-created).
        server.faults = false;
        server.start();
        await Promise.all(running);
        const until = Date.now() + 3000;
        while (reconnecting() && Date.now() < until)
          await new Promise((res) => setTimeout(res, 10));
        if (reconnecting()) failures.push(`round ${round}: no heal within 3 s without faults`);
        else if (session.isOpen) {
          const byAck = new Map([...server.subs.values()].map((x) => [x.ackInbox, x]));
          for (const [name, sub] of live) {
            if (sub.isEnded) continue;
            const there = byAck.get(sub.ackInbox);
            if (!there?.online || there.inbox !== sub.inbox) {
              failures.push(`round ${round}: ${name} subscribed, but not so on the server`);
            }
          }
          const inboxes = new Set([...live.values()].filter((x) => !x.isEnded).map((x) => x.inbox));
          for (const x of server.subs.values()) {
            if (x.online && nc.hasSubscribers(x.inbox) && !inboxes.has(x.inbox)) {
              failures.push(
                `round ${round}: ${x.durableName || "a non-durable"} re-created unasked`,
              );
            }
          }
        }
        closing = session.close(call());
        track("sc.close", closing);
      }
      await Promise.all(running);
      // let every delayed request and reply of the fake land, then the server runs unfaulted
      server.start();
      while (server.busy > 0) await new Promise((res) => setTimeout(res, 10));
      await new Promise((res) => setTimeout(res, 20));

      // No zombie session: closed for the caller, and nothing answers for it on the server.
      if (session.isOpen) failures.push(`round ${round}: isOpen after close`);
      const pub = await session.publish("a", new Uint8Array([1])).then(
        () => "resolved",
        () => "rejected",
      );
      if (pub !== "rejected") failures.push(`round ${round}: a publish after close ${pub}`);
      const reg = server.clients.get(clientId);
      if (reg && nc.hasSubscribers(reg.hbInbox)) {
        failures.push(`round ${round}: zombie registration (its heartbeats are answered)`);
      }
      for (const s of server.subs.values()) {
        if (s.online && nc.hasSubscribers(s.inbox)) {
          failures.push(`round ${round}: ${s.durableName || "non-durable"} still delivered to`);
        }
      }
      // No lost durable operation: a durable exists after a subscribe or close that
      // succeeded, and not after an unsubscribe that succeeded (no heal re-created it).
      for (const [name, l] of last) {
        if (!name.startsWith("d") || !l.ok) continue;
        const exists = server.durable(clientId, name) !== undefined;
        const want = l.op !== "unsubscribe";
        if (exists !== want) {
          failures.push(
            `round ${round}: durable ${name} ${exists ? "exists" : "is gone"} after a successful ${l.op}`,
          );
        }
      }
      await nc.close();
    }
    console.log(
      `session-heal-race: ${stats.rounds} rounds, ${stats.ops} calls (${stats.duringHeal} during a heal, ${stats.settledOk} succeeded), ${stats.heals} heals`,
    );
    expect(failures).toEqual([]);
    expect(unhandled).toEqual([]);
    expect(stats.heals).toBeGreaterThan(0);
    expect(stats.duringHeal).toBeGreaterThan(0);
  });
});
