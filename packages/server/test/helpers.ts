/**
 * A minimal raw-protocol STAN client for the server tests: core NATS + @stan-ts/proto,
 * so every request and reply can be asserted byte for byte.
 */
import {
  AckSchema,
  CloseRequestSchema,
  CloseResponseSchema,
  ConnectRequestSchema,
  type ConnectResponse,
  ConnectResponseSchema,
  decode,
  encode,
  type MsgProto,
  MsgProtoSchema,
  PingResponseSchema,
  PingSchema,
  PubAckSchema,
  PubMsgSchema,
  type SubscriptionRequest,
  SubscriptionRequestSchema,
  SubscriptionResponseSchema,
  UnsubscribeRequestSchema,
} from "@stan-ts/proto";
import {
  type StreamingServerHandle,
  type StreamingServerOptions,
  streamingServer,
} from "@stan-ts/testing";
import { connect, createInbox, type NatsConnection, nuid, type Subscription } from "nats";
import { afterAll, beforeAll, expect } from "vitest";

export const enc = new TextEncoder();
export const dec = new TextDecoder();

/** Resolves when `cond()` is true, polling each event-loop turn; rejects after `timeout`. */
export async function until(
  cond: () => boolean,
  timeout = 5000,
  what = "condition",
): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A message received by a {@link RawSub}. */
export type Received = MsgProto;

/** A raw subscription: collects every MsgProto on its inbox. */
export class RawSub {
  readonly received: Received[] = [];
  private waiters: Array<() => void> = [];
  constructor(
    readonly client: RawClient,
    readonly subject: string,
    readonly inbox: string,
    readonly ackInbox: string,
    private readonly natsSub: Subscription,
  ) {}

  push(m: Received): void {
    this.received.push(m);
    for (const w of this.waiters.splice(0)) w();
  }

  /** Waits until `n` messages in total were received. */
  async waitFor(n: number, timeout = 5000): Promise<Received[]> {
    const deadline = Date.now() + timeout;
    while (this.received.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`expected ${n} messages on ${this.subject}, got ${this.received.length}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.received;
  }

  /** Sequences received so far. */
  seqs(): number[] {
    return this.received.map((m) => Number(m.sequence));
  }

  ack(seq: number | bigint, ackInbox = this.ackInbox): void {
    this.client.nc.publish(
      ackInbox,
      encode(AckSchema, { subject: this.subject, sequence: BigInt(seq) }),
    );
  }

  /** Unsubscribes (or closes) and returns the server's error text ("" on success). */
  async unsubscribe(close = false): Promise<string> {
    const err = await this.client.unsub(this.subject, this.ackInbox, close);
    this.natsSub.unsubscribe();
    return err;
  }

  stopListening(): void {
    this.natsSub.unsubscribe();
  }
}

/** Options for {@link RawClient.connect}. */
export interface RawConnectOptions {
  /** Answer server heartbeats. @default true */
  answerHb?: boolean;
  protocol?: number;
  pingInterval?: number;
  pingMaxOut?: number;
  discoverPrefix?: string;
}

/** A raw STAN client. */
export class RawClient {
  /** Counts the inboxes subRequest made up for requests that named none. */
  private inboxes = 0;

  private constructor(
    readonly nc: NatsConnection,
    readonly clientID: string,
    readonly connID: Uint8Array,
    readonly resp: ConnectResponse,
    readonly hbSub: Subscription,
    readonly hbCount: { n: number },
  ) {}

  /** Sends a ConnectRequest and returns the raw ConnectResponse (may carry an error). */
  static async tryConnect(
    url: string,
    clusterId: string,
    clientID: string,
    o: RawConnectOptions = {},
  ): Promise<{ client?: RawClient; resp: ConnectResponse; nc: NatsConnection }> {
    const nc = await connect({ servers: url });
    const hbInbox = createInbox();
    const hbCount = { n: 0 };
    const hbSub = nc.subscribe(hbInbox, {
      callback: (_e, m) => {
        hbCount.n++;
        if (o.answerHb ?? true) m.respond();
      },
    });
    const connID = enc.encode(nuid.next());
    const reply = await nc.request(
      `${o.discoverPrefix ?? "_STAN.discover"}.${clusterId}`,
      encode(ConnectRequestSchema, {
        clientID,
        heartbeatInbox: hbInbox,
        protocol: o.protocol ?? 1,
        connID,
        pingInterval: o.pingInterval ?? 5,
        pingMaxOut: o.pingMaxOut ?? 88,
      }),
      { timeout: 3000 },
    );
    const resp = decode(ConnectResponseSchema, reply.data);
    if (resp.error !== "") return { resp, nc };
    return { client: new RawClient(nc, clientID, connID, resp, hbSub, hbCount), resp, nc };
  }

  /** Connects or throws the server's error text. */
  static async connect(
    url: string,
    clusterId: string,
    clientID: string,
    o: RawConnectOptions = {},
  ): Promise<RawClient> {
    const r = await RawClient.tryConnect(url, clusterId, clientID, o);
    if (!r.client) {
      await r.nc.close();
      throw new Error(r.resp.error);
    }
    return r.client;
  }

  /** Publishes and returns the PubAck error ("" on success) and guid. */
  async publish(
    subject: string,
    data: string | Uint8Array = "",
    o: { guid?: string; clientID?: string; connID?: Uint8Array; natsSubject?: string } = {},
  ): Promise<{ guid: string; error: string }> {
    const guid = o.guid ?? nuid.next();
    const reply = await this.nc.request(
      `${this.resp.pubPrefix}.${o.natsSubject ?? subject}`,
      encode(PubMsgSchema, {
        clientID: o.clientID ?? this.clientID,
        guid,
        subject,
        data: typeof data === "string" ? enc.encode(data) : data,
        connID: o.connID ?? this.connID,
      }),
      { timeout: 3000 },
    );
    const ack = decode(PubAckSchema, reply.data);
    return { guid: ack.guid, error: ack.error };
  }

  /** Publishes `n` messages `prefix0..` and waits for every PubAck. */
  async publishMany(subject: string, n: number, prefix = "m"): Promise<void> {
    const acks = await Promise.all(
      Array.from({ length: n }, (_, i) => this.publish(subject, `${prefix}${i}`)),
    );
    for (const a of acks) if (a.error) throw new Error(a.error);
  }

  /** Sends a raw SubscriptionRequest; returns the decoded response. */
  async subRequest(
    req: Partial<Omit<SubscriptionRequest, "$typeName">>,
  ): Promise<{ ackInbox: string; error: string }> {
    const reply = await this.nc.request(
      this.resp.subRequests,
      encode(SubscriptionRequestSchema, {
        clientID: this.clientID,
        // a deliverable inbox unless the test names one: the server refuses an empty one
        inbox: `_INBOX.raw.${this.clientID}.${++this.inboxes}`,
        maxInFlight: 1024,
        ackWaitInSecs: 30,
        ...req,
      }),
      { timeout: 3000 },
    );
    return decode(SubscriptionResponseSchema, reply.data);
  }

  /** Subscribes; throws the server's error text. */
  async subscribe(
    subject: string,
    req: Partial<Omit<SubscriptionRequest, "$typeName">> = {},
  ): Promise<RawSub> {
    const inbox = createInbox();
    let sub: RawSub | undefined;
    const early: Received[] = [];
    const natsSub = this.nc.subscribe(inbox, {
      callback: (_e, m) => {
        const msg = decode(MsgProtoSchema, m.data);
        if (sub) sub.push(msg);
        else early.push(msg);
      },
    });
    const resp = await this.subRequest({ subject, inbox, ...req });
    if (resp.error) {
      natsSub.unsubscribe();
      throw new Error(resp.error);
    }
    sub = new RawSub(this, subject, inbox, resp.ackInbox, natsSub);
    for (const m of early) sub.push(m);
    return sub;
  }

  /** Unsubscribe / sub-close request; returns the error text ("" on success). */
  async unsub(subject: string, inbox: string, close = false, clientID = this.clientID) {
    const reply = await this.nc.request(
      close ? this.resp.subCloseRequests : this.resp.unsubRequests,
      encode(UnsubscribeRequestSchema, { clientID, subject, inbox }),
      { timeout: 3000 },
    );
    if (reply.data.length === 0) return "";
    return decode(SubscriptionResponseSchema, reply.data).error;
  }

  /** Sends a ping; returns the raw reply bytes' error ("" = empty success). */
  async ping(connID: Uint8Array = this.connID): Promise<{ error: string; bytes: number }> {
    const reply = await this.nc.request(this.resp.pingRequests, encode(PingSchema, { connID }), {
      timeout: 3000,
    });
    return { error: decode(PingResponseSchema, reply.data).error, bytes: reply.data.length };
  }

  /** Close request; returns the error text ("" on success); keeps the NATS connection. */
  async closeRequest(clientID = this.clientID): Promise<string> {
    const reply = await this.nc.request(
      this.resp.closeRequests,
      encode(CloseRequestSchema, { clientID }),
      { timeout: 3000 },
    );
    return reply.data.length === 0 ? "" : decode(CloseResponseSchema, reply.data).error;
  }

  /** Closes the STAN session and the NATS connection. */
  async close(): Promise<void> {
    if (this.nc.isClosed()) return;
    await this.closeRequest().catch(() => "");
    await this.nc.close();
  }

  /** Drops the NATS connection without a CloseRequest (a crashed client). */
  async vanish(): Promise<void> {
    await this.nc.close();
  }
}

let counter = 0;
/** A unique client ID / channel name fragment. */
export function uid(prefix = "c"): string {
  counter++;
  return `${prefix}${process.pid}_${counter}_${Math.floor(Math.random() * 1e6)}`;
}

/** The stores every protocol suite runs against. */
export const STORES = ["memory", "file"] as const;

/** A server plus one connected raw client, shared by the tests of a describe block. */
export interface Fixture {
  readonly stan: StreamingServerHandle;
  readonly c: RawClient;
  /** A PubAck round trip: every delivery the server made before it has reached `client`. */
  barrier(client?: RawClient): Promise<void>;
}

/** Starts a server and a client in `beforeAll`, disposes both in `afterAll`. */
export function useServer(options: StreamingServerOptions): Fixture {
  let stan: StreamingServerHandle | undefined;
  let c: RawClient | undefined;
  beforeAll(async () => {
    stan = await streamingServer(options);
    c = await RawClient.connect(stan.url, stan.clusterId, uid());
  });
  afterAll(async () => {
    await c?.close();
    await stan?.[Symbol.asyncDispose]();
  });
  const f: Fixture = {
    get stan() {
      if (!stan) throw new Error("server not started");
      return stan;
    },
    get c() {
      if (!c) throw new Error("client not connected");
      return c;
    },
    barrier: async (client = f.c) => {
      expect((await client.publish("barrier.chan", "b")).error).toBe("");
    },
  };
  return f;
}
