/**
 * A precise in-memory NATS for engine unit tests: exact-subject routing, request/reply with
 * timeouts and 503 no-responders, asynchronous delivery as on a socket.
 */
import {
  ConnectResponseSchema,
  decode,
  encode,
  PingResponseSchema,
  PubAckSchema,
  PubMsgSchema,
} from "@stan-ts/proto";
import type { NatsConnectionLike, NatsMsgLike, NatsSubscriptionLike } from "../src/index.js";

type Handler = (err: Error | null, msg: NatsMsgLike) => void;

export class FakeNats implements NatsConnectionLike {
  readonly info = { max_payload: 1024 * 1024 };
  private readonly subs = new Map<string, Set<Handler>>();
  private isDown = false;
  private resolveClosed!: () => void;
  private readonly closedP = new Promise<void>((r) => {
    this.resolveClosed = r;
  });
  private inboxSeq = 0;
  published = 0;

  publish(
    subject: string,
    payload: Uint8Array = new Uint8Array(0),
    opts?: { reply?: string },
  ): void {
    if (this.isDown) throw new Error("connection closed");
    this.published++;
    const handlers = this.subs.get(subject);
    if (!handlers) return;
    const msg: NatsMsgLike = { subject, data: payload, reply: opts?.reply };
    for (const h of [...handlers]) queueMicrotask(() => h(null, msg));
  }

  subscribe(subject: string, opts?: { callback?: Handler }): NatsSubscriptionLike {
    const cb = opts?.callback ?? (() => {});
    let set = this.subs.get(subject);
    if (!set) {
      set = new Set();
      this.subs.set(subject, set);
    }
    set.add(cb);
    return {
      unsubscribe: () => {
        set?.delete(cb);
        if (set?.size === 0) this.subs.delete(subject);
      },
    };
  }

  hasSubscribers(subject: string): boolean {
    return (this.subs.get(subject)?.size ?? 0) > 0;
  }

  request(
    subject: string,
    payload?: Uint8Array,
    opts?: { timeout?: number },
  ): Promise<NatsMsgLike> {
    if (!this.hasSubscribers(subject)) {
      return Promise.reject(Object.assign(new Error("503"), { code: "503" }));
    }
    const inbox = `_INBOX.fake.${++this.inboxSeq}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        sub.unsubscribe();
        reject(Object.assign(new Error("TIMEOUT"), { code: "TIMEOUT" }));
      }, opts?.timeout ?? 1000);
      const sub = this.subscribe(inbox, {
        callback: (_e, m) => {
          clearTimeout(timer);
          sub.unsubscribe();
          resolve(m);
        },
      });
      this.publish(subject, payload, { reply: inbox });
    });
  }

  async flush(): Promise<void> {}
  closed(): Promise<unknown> {
    return this.closedP;
  }
  isClosed(): boolean {
    return this.isDown;
  }
  async close(): Promise<void> {
    this.isDown = true;
    this.subs.clear();
    this.resolveClosed();
  }
}

/** Enough of a streaming server to drive the engine: connect, pings, publish acks. */
export class FakeStreamingServer {
  /** "ack": answer publishes; "hold": keep them until release(); "error": refuse them; "drop": ignore. */
  mode: "ack" | "hold" | "error" | "drop" = "ack";
  /** guids of every publish received, in order (re-sends included). */
  readonly guids: string[] = [];
  connects = 0;
  pingError = "";
  readonly held: Array<{ reply: string; guid: string }> = [];
  received = 0;
  private readonly subs: NatsSubscriptionLike[] = [];
  private pingSub: NatsSubscriptionLike | undefined;

  constructor(
    private readonly nc: FakeNats,
    readonly clusterId = "test-cluster",
  ) {
    this.subs.push(
      this.discoverSub(),
      nc.subscribe(`_STAN.close.${clusterId}`, {
        callback: (_e, m) => {
          if (m.reply) nc.publish(m.reply, new Uint8Array(0));
        },
      }),
    );
    this.answerPings();
    // exact-subject fake: tests publish on these channels
    for (const ch of ["a", "b", "orders"]) {
      this.subs.push(
        nc.subscribe(`_STAN.pub.${clusterId}.${ch}`, { callback: (_e, m) => this.onPub(m) }),
      );
    }
  }

  private discoverSub(): NatsSubscriptionLike {
    const nc = this.nc;
    const clusterId = this.clusterId;
    return nc.subscribe(`_STAN.discover.${clusterId}`, {
      callback: (_e, m) => {
        this.connects++;
        const resp = encode(ConnectResponseSchema, {
          pubPrefix: `_STAN.pub.${clusterId}`,
          subRequests: `_STAN.sub.${clusterId}`,
          unsubRequests: `_STAN.unsub.${clusterId}`,
          subCloseRequests: `_STAN.subclose.${clusterId}`,
          closeRequests: `_STAN.close.${clusterId}`,
          pingRequests: `_STAN.discover.${clusterId}.pings`,
          pingInterval: 1,
          pingMaxOut: 3,
          protocol: 1,
        });
        if (m.reply) nc.publish(m.reply, resp);
      },
    });
  }

  /** Stops answering connect requests (no responders) until `resume()`. */
  pauseDiscovery(): { resume: () => void } {
    const sub = this.subs[0];
    sub?.unsubscribe();
    return {
      resume: () => {
        this.subs[0] = this.discoverSub();
      },
    };
  }

  answerPings(): void {
    this.pingSub = this.nc.subscribe(`_STAN.discover.${this.clusterId}.pings`, {
      callback: (_e, m) => {
        if (m.reply)
          this.nc.publish(m.reply, encode(PingResponseSchema, { error: this.pingError }));
      },
    });
  }

  /** Stops answering pings: requests then get 503 no-responders, as with a dead server. */
  stopPings(): void {
    this.pingSub?.unsubscribe();
  }

  private onPub(m: NatsMsgLike): void {
    this.received++;
    const pub = decode(PubMsgSchema, m.data);
    this.guids.push(pub.guid);
    if (!m.reply || this.mode === "drop") return;
    if (this.mode === "hold") this.held.push({ reply: m.reply, guid: pub.guid });
    else if (this.mode === "error") {
      this.nc.publish(
        m.reply,
        encode(PubAckSchema, { guid: pub.guid, error: "stan: invalid publish request" }),
      );
    } else this.nc.publish(m.reply, encode(PubAckSchema, { guid: pub.guid }));
  }

  /** Acks the oldest `n` held publishes. */
  release(n = this.held.length): void {
    for (const h of this.held.splice(0, n)) {
      this.nc.publish(h.reply, encode(PubAckSchema, { guid: h.guid }));
    }
  }
}
