/**
 * The engine's state and the helpers every layer uses: NATS connections, registries, the serialized request chain, the clock, replies.
 *
 * @internal
 */

import type { ConnectionOptions, Msg, NatsConnection, Subscription } from "nats";
import type { FrameWriter } from "../frames.js";
import type { ChannelLimitValues } from "../limits.js";
import type { Logger } from "../logger.js";
import type { ChannelStore, ClientRecord, ServerInfo, Store } from "../store/types.js";

/** Error texts of nats-streaming-server 0.25 (protocol.md). */
export const Errors = {
  invalidConnReq: "stan: invalid connection request",
  invalidClientID: "stan: invalid clientID: only alphanumeric and `-` or `_` characters allowed",
  clientIDRegistered: "stan: clientID already registered",
  invalidPubReq: "stan: invalid publish request",
  invalidSubReq: "stan: invalid subscription request",
  missingClient: "stan: clientID missing",
  invalidAckWait: "stan: invalid ack wait time, should be >= 1s",
  invalidMaxInflight: "stan: invalid MaxInflight, should be >= 1",
  invalidStart: "stan: invalid start position",
  invalidSubject: "stan: invalid subject",
  unknownClient: "stan: unknown clientID",
  durableQueueColon:
    "stan: durable name of a durable queue subscriber can't contain the character ':'",
  duplicateDurable: "stan: duplicate durable registration",
  tooManySubs: "too many subscriptions per channel",
  tooManyChannels: "too many channels",
  invalidUnsubReq: "stan: invalid unsubscribe request",
  unknownChannel: "stan: unknown channel",
  invalidSub: "stan: invalid subscription",
  invalidCloseReq: "stan: invalid close request",
  replaced: "client has been replaced or is no longer registered",
} as const;

/** Engine settings (already merged with defaults). */
export interface EngineConfig {
  clusterId: string;
  discoverPrefix: string;
  /** Milliseconds. */
  hbInterval: number;
  /** Milliseconds. */
  hbTimeout: number;
  hbFailCount: number;
  maxChannels: number;
  /** Sub-close an online durable when a new request for it arrives, instead of refusing it. */
  replaceDurable: boolean;
  /** Extra options of the NATS connections (credentials, TLS). */
  natsOptions?: Partial<ConnectionOptions>;
  /** Effective limits of a channel (subscriptions and inactivity here; messages in the store). */
  limitsFor: (channel: string) => ChannelLimitValues;
  logger: Logger;
}

export const EMPTY = new Uint8Array(0);
/** The longest delay setTimeout honours (2^31 - 1 ms). */
export const MAX_TIMEOUT = 2_147_483_647;
/**
 * The most a redelivery adds to a stored MsgProto: redelivered (2 bytes) and redeliveryCount
 * (a tag and a uint32 varint of up to 5 bytes).
 */
export const REDELIVERY_BYTES = 8;

/** The subjects of a new server (§1): `<discoverPrefix>.<cid>`, `_STAN.pub.<cid>`, ... */
export function serverInfoFor(clusterId: string, discoverPrefix: string): ServerInfo {
  const cid = clusterId;
  return {
    clusterId: cid,
    discoverPrefix: `${discoverPrefix}.${cid}`,
    pubPrefix: `_STAN.pub.${cid}`,
    subRequests: `_STAN.sub.${cid}`,
    unsubRequests: `_STAN.unsub.${cid}`,
    subCloseRequests: `_STAN.subclose.${cid}`,
    closeRequests: `_STAN.close.${cid}`,
    acksSubs: `_STAN.ack.${cid}`,
  };
}

/** The PubAck error of a message whose delivery would exceed max_payload. */
export function tooLarge(bytes: number, maxPayload: number): string {
  return `stan: message too large to deliver: its MsgProto is ${bytes} bytes (up to ${bytes + REDELIVERY_BYTES} when redelivered), over the server's NATS max_payload of ${maxPayload}`;
}

export interface Client {
  readonly rec: ClientRecord;
  readonly subs: Set<Sub>;
  fhb: number;
  hbTimer: NodeJS.Timeout | undefined;
  closed: boolean;
}

export interface Group {
  readonly key: string;
  readonly durable: boolean;
  members: Sub[];
  lastSent: number;
  stalledCount: number;
  shadow: Sub | undefined;
  readonly redeliveries: Map<number, number>;
}

export interface Sub {
  readonly id: number;
  readonly channel: Channel;
  /** Empty while offline (closed durable, shadow). */
  clientID: string;
  /** The client ID stored in the record (kept for offline durables). */
  recordClientID: string;
  inbox: string;
  ackInbox: string;
  maxInFlight: number;
  ackWaitInSecs: number;
  readonly durableName: string;
  readonly isDurable: boolean;
  readonly qGroup: string;
  readonly group: Group | undefined;
  lastSent: number;
  /** seq -> expiry (ms since epoch; 0 = unknown). */
  readonly pending: Map<number, number>;
  readonly redeliveries: Map<number, number>;
  stalled: boolean;
  initialized: boolean;
  holdNew: boolean;
  hasFailedHB: boolean;
  timer: NodeJS.Timeout | undefined;
  ackSub: Subscription | undefined;
}

export interface Channel {
  readonly name: string;
  readonly store: ChannelStore;
  readonly plain: Set<Sub>;
  readonly groups: Map<string, Group>;
  readonly durables: Map<string, Sub>;
  readonly byAckInbox: Map<string, Sub>;
  readonly byInbox: Map<string, Sub>;
  subRecords: number;
  nextSubId: number;
  readonly maxSubs: number;
  readonly maxInactivity: number;
  /** Date.now() of the last stored message, or of the creation. */
  lastActivity: number;
  inactivity: NodeJS.Timeout | undefined;
}

export interface QueuedPub {
  guid: string;
  subject: string;
  reply: string;
  data: Uint8Array;
  ackTo: string;
}

/** Engine layer 1: the state every layer shares, and the common helpers (module map in ../engine.ts). */
export class EngineState {
  protected general!: NatsConnection;
  protected send!: NatsConnection;
  protected acks!: NatsConnection;
  protected hb!: NatsConnection;
  /** All publishes on `send` go through it: one buffer of PUB frames per event-loop turn. */
  protected out!: FrameWriter;
  protected info!: ServerInfo;
  protected readonly clients = new Map<string, Client>();
  protected readonly clientsByConn = new Map<string, Client>();
  protected readonly dupChecks = new Set<string>();
  protected readonly channels = new Map<string, Channel>();
  protected readonly channelsLower = new Map<string, Channel>();
  protected queue: QueuedPub[] = [];
  protected scheduled = false;
  protected chain: Promise<void> = Promise.resolve();
  protected closing = false;
  protected malformedCount = 0;
  /** The last timestamp handed out, as ms since the epoch + ns within the ms (see stamp()). */
  protected tsMs = 0;
  protected tsSub = 0;
  protected readonly log: Logger;

  protected readonly cfg: EngineConfig;

  constructor(
    cfg: EngineConfig,
    protected readonly store: Store,
  ) {
    // Node fires a longer timeout after 1 ms: heartbeat settings past its range are capped
    this.cfg = {
      ...cfg,
      hbInterval: Math.min(cfg.hbInterval, MAX_TIMEOUT),
      hbTimeout: Math.min(cfg.hbTimeout, MAX_TIMEOUT),
    };
    this.log = cfg.logger;
  }

  /** Counts and logs an undecodable message; the server answers or drops it as the Go server does. */
  protected malformed(what: string, m: Msg): void {
    this.malformedCount++;
    this.log.warn("malformed message", { what, subject: m.subject, bytes: m.data.length });
  }

  protected serial(fn: () => Promise<void> | void): void {
    this.chain = this.chain.then(fn).catch((err: unknown) => {
      this.log.error("request failed", { err: String(err) });
    });
  }

  /**
   * Advances the server clock to now (ns since the epoch, strictly increasing) and leaves it
   * in tsMs + tsSub: number arithmetic only, as the publish path calls it per message.
   *
   * The milliseconds are the wall clock (Date.now()), the clock the age limit, the ack
   * expiries and the channel activity use too, and the one the Go server stamps with
   * (time.Now()); performance.now() only adds the sub-millisecond digits. A monotonic clock
   * alone drifts from the wall clock (it stops while the machine sleeps, ignores NTP steps),
   * and MaxAge would then expire messages early or late. When the wall clock steps back, the
   * stamps hold at the last one (+1 ns each) until it catches up, as the Go server clamps to
   * the channel's last timestamp.
   */
  protected stamp(): void {
    let ms = Date.now();
    let sub = Math.floor((performance.now() % 1) * 1e6);
    if (ms < this.tsMs || (ms === this.tsMs && sub <= this.tsSub)) {
      ms = this.tsMs;
      sub = this.tsSub + 1;
      if (sub === 1e6) {
        ms++;
        sub = 0;
      }
    }
    this.tsMs = ms;
    this.tsSub = sub;
  }

  /** Never stamps below `ns` (a recovered channel's last timestamp, from an earlier run). */
  protected clockFloor(ns: bigint): void {
    const ms = Number(ns / 1_000_000n);
    const sub = Number(ns % 1_000_000n);
    if (ms > this.tsMs || (ms === this.tsMs && sub > this.tsSub)) {
      this.tsMs = ms;
      this.tsSub = sub;
    }
  }

  protected nowNs(): bigint {
    this.stamp();
    return BigInt(this.tsMs) * 1_000_000n + BigInt(this.tsSub);
  }

  protected reply(nc: NatsConnection, subject: string | undefined, data: Uint8Array): void {
    if (!subject || nc.isClosed()) return;
    try {
      if (nc === this.send) this.out.publish(subject, data);
      else nc.publish(subject, data);
    } catch {
      // a failed reply is silent, as in the Go server
    }
  }

  /** reply(this.send, subject, PubAck{guid}) without encoding the PubAck separately. */
  protected pubAck(subject: string, guid: string): void {
    if (!subject || this.send.isClosed()) return;
    try {
      this.out.pubAck(subject, guid);
    } catch {
      // as in reply()
    }
  }

  /**
   * Resolves once every ack that reached the acks connection before now is applied. Started
   * when a request arrives (not when the serialized chain reaches it), so a flood of
   * unsubscribe or close requests costs overlapping round trips, not one after the other:
   * an ack its client sent before the request was queued for the acks connection before the
   * request was, so a flush begun on the request's arrival covers it. Never rejects (a
   * closing connection has nothing more to apply).
   */
  protected barrier(): Promise<void> {
    if (this.acks.isClosed()) return Promise.resolve();
    return this.acks.flush().catch(() => {});
  }

  /** The largest payload the `send` connection may publish (its server's max_payload). */
  protected maxPayload(): number {
    return this.send.info?.max_payload ?? Number.POSITIVE_INFINITY;
  }

  protected clearTimer(sub: Sub): void {
    if (sub.timer) clearTimeout(sub.timer);
    sub.timer = undefined;
  }
}
