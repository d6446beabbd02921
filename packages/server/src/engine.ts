/**
 * The NATS Streaming server engine (server-behaviour.md §1-§9, standalone mode).
 *
 * Everything runs on the event loop: store calls are synchronous, publishes are handled in
 * IO batches (all messages that arrived before the loop turned), and the only timers are
 * one heartbeat timer per client and one redelivery timer per subscription.
 *
 * @internal
 */

import { FrameSubjectError, isFrameSubject } from "@stan-ts/core";
import type { SubscriptionRequest, UnsubscribeRequest } from "@stan-ts/proto";
import {
  CloseRequestSchema,
  CloseResponseSchema,
  ConnectRequestSchema,
  ConnectResponseSchema,
  decode,
  encode,
  PingResponseSchema,
  PingSchema,
  StartPosition,
  SubscriptionRequestSchema,
  SubscriptionResponseSchema,
  UnsubscribeRequestSchema,
} from "@stan-ts/proto";
import {
  type ConnectionOptions,
  connect,
  createInbox,
  type Msg,
  type NatsConnection,
  type Subscription,
} from "nats";
import { decodeAck, decodePubMsg, encodeMsgProto, encodePubAck, withRedelivery } from "./codec.js";
import { FrameWriter } from "./frames.js";
import type { ChannelLimitValues } from "./limits.js";
import type { Logger } from "./logger.js";
import { StampedMsg } from "./store/memory.js";
import type {
  ChannelStore,
  ClientRecord,
  RecoveredChannel,
  ServerInfo,
  Store,
  StoredMsg,
  SubRecord,
} from "./store/types.js";

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

const CLIENT_ID_RE = /^[a-zA-Z0-9_-]+$/;
const EMPTY = new Uint8Array(0);
/** The longest delay setTimeout honours (2^31 - 1 ms). */
const MAX_TIMEOUT = 2_147_483_647;
/**
 * The most a redelivery adds to a stored MsgProto: redelivered (2 bytes) and redeliveryCount
 * (a tag and a uint32 varint of up to 5 bytes).
 */
const REDELIVERY_BYTES = 8;

/** The PubAck error of a message whose delivery would exceed max_payload. */
export function tooLarge(bytes: number, maxPayload: number): string {
  return `stan: message too large to deliver: its MsgProto is ${bytes} bytes (up to ${bytes + REDELIVERY_BYTES} when redelivered), over the server's NATS max_payload of ${maxPayload}`;
}

/** Channel-name rules of §4. */
export function isValidChannel(name: string): boolean {
  if (name.length === 0) return false;
  if (name.startsWith(".") || name.endsWith(".")) return false;
  if (name.includes("..")) return false;
  return !/[*>/]/.test(name);
}

interface Client {
  readonly rec: ClientRecord;
  readonly subs: Set<Sub>;
  fhb: number;
  hbTimer: NodeJS.Timeout | undefined;
  closed: boolean;
}

interface Group {
  readonly key: string;
  readonly durable: boolean;
  members: Sub[];
  lastSent: number;
  stalledCount: number;
  shadow: Sub | undefined;
  readonly redeliveries: Map<number, number>;
}

interface Sub {
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

interface Channel {
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

interface QueuedPub {
  guid: string;
  subject: string;
  reply: string;
  data: Uint8Array;
  ackTo: string;
}

/** The running engine. */
export class Engine {
  private general!: NatsConnection;
  private send!: NatsConnection;
  private acks!: NatsConnection;
  private hb!: NatsConnection;
  /** All publishes on `send` go through it: one buffer of PUB frames per event-loop turn. */
  private out!: FrameWriter;
  private info!: ServerInfo;
  private readonly clients = new Map<string, Client>();
  private readonly clientsByConn = new Map<string, Client>();
  private readonly dupChecks = new Set<string>();
  private readonly channels = new Map<string, Channel>();
  private readonly channelsLower = new Map<string, Channel>();
  private queue: QueuedPub[] = [];
  private scheduled = false;
  private chain: Promise<void> = Promise.resolve();
  private closing = false;
  private malformedCount = 0;
  /** The last timestamp handed out, as ms since the epoch + ns within the ms (see stamp()). */
  private tsMs = 0;
  private tsSub = 0;
  private readonly log: Logger;

  constructor(
    private readonly cfg: EngineConfig,
    private readonly store: Store,
  ) {
    this.log = cfg.logger;
  }

  /** Undecodable messages received from the network so far (each dropped or refused). */
  get protocolErrors(): number {
    return this.malformedCount;
  }

  /** Counts and logs an undecodable message; the server answers or drops it as the Go server does. */
  private malformed(what: string, m: Msg): void {
    this.malformedCount++;
    this.log.warn("malformed message", { what, subject: m.subject, bytes: m.data.length });
  }

  /** Subjects and cluster of the running server. */
  get serverInfo(): ServerInfo {
    return this.info;
  }

  /** Connects to NATS, recovers the store, subscribes and starts serving. */
  async start(natsUrl: string): Promise<void> {
    const cid = this.cfg.clusterId;
    const conn = (name: string) =>
      connect({
        servers: natsUrl,
        name: `_NSS-${cid}-${name}`,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        pingInterval: 10_000,
        ...this.cfg.natsOptions,
      });
    [this.general, this.send, this.acks, this.hb] = await Promise.all([
      conn("general"),
      conn("send"),
      conn("acks"),
      conn("hb"),
    ]);
    this.out = new FrameWriter(this.send);
    const recovered = this.store.recover();
    if (recovered) {
      if (recovered.info.clusterId !== cid) {
        throw new Error(
          `cluster ID "${cid}" does not match recovered value of "${recovered.info.clusterId}"`,
        );
      }
      this.info = recovered.info;
    } else {
      const d = `${this.cfg.discoverPrefix}.${cid}`;
      this.info = {
        clusterId: cid,
        discoverPrefix: d,
        pubPrefix: `_STAN.pub.${cid}`,
        subRequests: `_STAN.sub.${cid}`,
        unsubRequests: `_STAN.unsub.${cid}`,
        subCloseRequests: `_STAN.subclose.${cid}`,
        closeRequests: `_STAN.close.${cid}`,
        acksSubs: `_STAN.ack.${cid}`,
      };
      this.store.init(this.info);
    }
    await this.selfCheck();
    const recoveredSubs = recovered ? this.recover(recovered.clients, recovered.channels) : [];
    const g = this.general;
    const i = this.info;
    g.subscribe(i.discoverPrefix, { callback: (_e, m) => this.onConnect(m) });
    g.subscribe(`${i.discoverPrefix}.pings`, { callback: (_e, m) => this.onPing(m) });
    g.subscribe(`${i.pubPrefix}.>`, { callback: (_e, m) => this.onPublish(m) });
    g.subscribe(i.subRequests, { callback: (_e, m) => this.serial(() => this.onSubscribe(m)) });
    g.subscribe(i.unsubRequests, {
      callback: (_e, m) => this.serial(() => this.onUnsubscribe(m, false)),
    });
    g.subscribe(i.subCloseRequests, {
      callback: (_e, m) => this.serial(() => this.onUnsubscribe(m, true)),
    });
    g.subscribe(i.closeRequests, { callback: (_e, m) => this.serial(() => this.onClose(m)) });
    await Promise.all([g.flush(), this.acks.flush()]);
    for (const c of this.clients.values()) this.armHb(c, this.cfg.hbInterval);
    for (const sub of recoveredSubs) this.startRecoveredSub(sub);
    this.log.info("streaming server ready", {
      clusterId: cid,
      store: this.store.kind,
      nats: natsUrl,
      clients: this.clients.size,
      channels: this.channels.size,
    });
  }

  /**
   * Simulates a crash (kill -9) for tests: timers stop, NATS connections drop without a
   * flush, and buffered store writes that were not flushed yet are lost.
   */
  async crash(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.queue = []; // queued, unacknowledged publishes die with the process
    this.out?.discard();
    for (const c of this.clients.values()) if (c.hbTimer) clearTimeout(c.hbTimer);
    for (const ch of this.channels.values()) {
      this.stopInactivity(ch);
      for (const sub of ch.byAckInbox.values()) this.clearTimer(sub);
    }
    await Promise.allSettled(
      [this.general, this.send, this.acks, this.hb].map((nc) => nc?.close()),
    );
    this.store.close(false);
  }

  /** Stops serving, closes the NATS connections and the store. */
  async shutdown(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await this.chain.catch(() => {});
    if (this.queue.length > 0) this.processBatch();
    for (const c of this.clients.values()) {
      if (c.hbTimer) clearTimeout(c.hbTimer);
      c.closed = true;
    }
    for (const ch of this.channels.values()) {
      this.stopInactivity(ch);
      for (const sub of ch.byAckInbox.values()) this.clearTimer(sub);
      for (const d of ch.durables.values()) this.clearTimer(d);
      ch.store.flushSubs();
    }
    this.out?.flush();
    await Promise.allSettled(
      [this.general, this.send, this.acks, this.hb].map(async (nc) => {
        if (!nc || nc.isClosed()) return;
        await nc.flush().catch(() => {});
        await nc.close();
      }),
    );
    this.store.close();
  }

  // ---------------------------------------------------------------- helpers

  private serial(fn: () => Promise<void> | void): void {
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
  private stamp(): void {
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
  private clockFloor(ns: bigint): void {
    const ms = Number(ns / 1_000_000n);
    const sub = Number(ns % 1_000_000n);
    if (ms > this.tsMs || (ms === this.tsMs && sub > this.tsSub)) {
      this.tsMs = ms;
      this.tsSub = sub;
    }
  }

  private nowNs(): bigint {
    this.stamp();
    return BigInt(this.tsMs) * 1_000_000n + BigInt(this.tsSub);
  }

  private reply(nc: NatsConnection, subject: string | undefined, data: Uint8Array): void {
    if (!subject || nc.isClosed()) return;
    try {
      if (nc === this.send) this.out.publish(subject, data);
      else nc.publish(subject, data);
    } catch {
      // a failed reply is silent, as in the Go server
    }
  }

  /** reply(this.send, subject, PubAck{guid}) without encoding the PubAck separately. */
  private pubAck(subject: string, guid: string): void {
    if (!subject || this.send.isClosed()) return;
    try {
      this.out.pubAck(subject, guid);
    } catch {
      // as in reply()
    }
  }

  private async selfCheck(): Promise<void> {
    const cid = this.cfg.clusterId;
    const req = encode(ConnectRequestSchema, { clientID: cid, heartbeatInbox: createInbox() });
    let resp: Msg;
    try {
      resp = await this.general.request(this.info.discoverPrefix, req, { timeout: 250 });
    } catch {
      return;
    }
    try {
      const cr = decode(ConnectResponseSchema, resp.data);
      if (cr.error === "" && cr.closeRequests !== "") {
        this.general.publish(cr.closeRequests, encode(CloseRequestSchema, { clientID: cid }));
        await this.general.flush();
      }
    } catch {
      return;
    }
    throw new Error(`discovered another streaming server with cluster ID "${cid}"`);
  }

  // ---------------------------------------------------------------- connect

  private onConnect(m: Msg) {
    const fail = (error: string) =>
      this.reply(this.general, m.reply, encode(ConnectResponseSchema, { error }));
    let clientID: string;
    let hbInbox: string;
    let rec: ClientRecord;
    try {
      const r = decode(ConnectRequestSchema, m.data);
      clientID = r.clientID;
      hbInbox = r.heartbeatInbox;
      rec = {
        id: r.clientID,
        hbInbox: r.heartbeatInbox,
        connID: Buffer.from(r.connID).toString("latin1"),
        protocol: r.protocol,
        pingInterval: r.pingInterval,
        pingMaxOut: r.pingMaxOut,
      };
    } catch {
      this.malformed("ConnectRequest", m);
      return fail(Errors.invalidConnReq);
    }
    if (!isFrameSubject(hbInbox)) return fail(Errors.invalidConnReq);
    if (!CLIENT_ID_RE.test(clientID)) return fail(Errors.invalidClientID);
    const old = this.clients.get(clientID);
    if (!old) {
      this.register(rec, m.reply);
      return;
    }
    if (this.dupChecks.has(clientID)) return fail(Errors.clientIDRegistered);
    this.dupChecks.add(clientID);
    this.log.debug("duplicate clientID, probing the old client", { clientID });
    this.hbRequest(old.rec.hbInbox, 500).then(
      () => {
        this.dupChecks.delete(clientID);
        fail(Errors.clientIDRegistered);
      },
      () => {
        // The replacement is one of the serialized requests: it must not land while a
        // subscribe, unsubscribe or close of the old client is half done (a CloseRequest
        // the old client sent before would otherwise find, and close, the new client).
        this.serial(async () => {
          try {
            if (this.closing) return;
            await this.barrier();
            const cur = this.clients.get(clientID);
            if (cur === old) {
              this.log.info("replacing client that did not answer", { clientID });
              this.closeClient(old);
            }
            if (this.clients.has(clientID)) return fail(Errors.clientIDRegistered);
            this.register(rec, m.reply);
          } finally {
            this.dupChecks.delete(clientID);
          }
        });
      },
    );
  }

  private addClient(rec: ClientRecord): Client {
    const c: Client = { rec, subs: new Set(), fhb: 0, hbTimer: undefined, closed: false };
    this.clients.set(rec.id, c);
    if (rec.connID !== "") this.clientsByConn.set(rec.connID, c);
    return c;
  }

  private register(rec: ClientRecord, replyTo: string | undefined): void {
    this.store.addClient(rec);
    const c = this.addClient(rec);
    this.armHb(c, this.cfg.hbInterval);
    const i = this.info;
    const resp = encode(ConnectResponseSchema, {
      pubPrefix: i.pubPrefix,
      subRequests: i.subRequests,
      unsubRequests: i.unsubRequests,
      closeRequests: i.closeRequests,
      subCloseRequests: i.subCloseRequests,
      protocol: 1,
      ...(rec.protocol >= 1
        ? {
            pingRequests: `${i.discoverPrefix}.pings`,
            pingInterval: rec.pingInterval,
            pingMaxOut: rec.pingMaxOut,
          }
        : {}),
    });
    this.log.debug("client connected", { clientID: rec.id });
    this.reply(this.general, replyTo, resp);
  }

  // ---------------------------------------------------------------- heartbeats and pings

  private armHb(c: Client, delay: number): void {
    if (c.closed || this.closing) return;
    if (c.hbTimer) clearTimeout(c.hbTimer);
    c.hbTimer = setTimeout(() => this.sendHb(c), delay);
  }

  private sendHb(c: Client): void {
    c.hbTimer = undefined;
    if (c.closed || this.closing) return;
    this.hbRequest(c.rec.hbInbox, this.cfg.hbTimeout).then(
      () => {
        if (c.closed) return;
        if (c.fhb > 0) {
          c.fhb = 0;
          this.setFailedHB(c, false);
        }
        this.armHb(c, this.cfg.hbInterval);
      },
      () => {
        if (c.closed || this.closing) return;
        c.fhb++;
        if (c.fhb === 1) this.setFailedHB(c, true);
        if (c.fhb > this.cfg.hbFailCount) {
          this.log.info("client missed heartbeats, closing it", { clientID: c.rec.id });
          this.serial(async () => {
            await this.barrier();
            if (this.clients.get(c.rec.id) === c) this.closeClient(c);
          });
          return;
        }
        this.armHb(c, this.cfg.hbInterval);
      },
    );
  }

  /**
   * A heartbeat request. An inbox that cannot stand in a PUB frame (a record recovered from a
   * store written before connect refused such inboxes) fails like an unanswered heartbeat,
   * without a byte sent: nats.js would write it raw and break the hb connection.
   */
  private hbRequest(inbox: string, timeout: number): Promise<Msg> {
    if (!isFrameSubject(inbox)) {
      return Promise.reject(new FrameSubjectError("heartbeat inbox", inbox));
    }
    return this.hb.request(inbox, EMPTY, { timeout });
  }

  private setFailedHB(c: Client, failed: boolean): void {
    for (const sub of c.subs) sub.hasFailedHB = failed;
  }

  private onPing(m: Msg): void {
    if (m.data.length === 0) {
      this.malformed("Ping", m);
      return;
    }
    let connID: string;
    try {
      connID = Buffer.from(decode(PingSchema, m.data).connID).toString("latin1");
    } catch {
      this.malformed("Ping", m);
      return;
    }
    const c = this.clientsByConn.get(connID);
    if (!c) {
      this.reply(this.hb, m.reply, encode(PingResponseSchema, { error: Errors.replaced }));
      return;
    }
    this.reply(this.hb, m.reply, EMPTY);
    if (c.fhb > 0 && c.hbTimer) this.armHb(c, 1);
  }

  // ---------------------------------------------------------------- publish

  private onPublish(m: Msg): void {
    if (this.closing) return; // shutting down: no new work for a store about to close
    let pm: ReturnType<typeof decodePubMsg>;
    try {
      pm = decodePubMsg(m.data);
    } catch {
      this.malformed("PubMsg", m);
      this.reply(this.send, m.reply, encodePubAck("", Errors.invalidPubReq));
      return;
    }
    if (pm.guid === "" || !isValidChannel(pm.subject)) {
      this.reply(this.send, m.reply, encodePubAck(pm.guid, Errors.invalidPubReq));
      return;
    }
    const client =
      pm.connID !== "" ? this.clientsByConn.get(pm.connID) : this.clients.get(pm.clientID);
    if (!client) {
      this.reply(this.send, m.reply, encodePubAck(pm.guid, Errors.invalidPubReq));
      return;
    }
    this.queue.push({
      guid: pm.guid,
      subject: pm.subject,
      reply: pm.reply,
      data: pm.data,
      ackTo: m.reply ?? "",
    });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.processBatch());
    }
  }

  private processBatch(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    const touched = new Set<Channel>();
    const ok: QueuedPub[] = [];
    const maxPayload = this.maxPayload();
    for (const p of batch) {
      const ch = this.channelFor(p.subject);
      if (typeof ch === "string") {
        this.reply(this.send, p.ackTo, encodePubAck(p.guid, ch));
        continue;
      }
      const log = ch.store.msgs;
      const seq = log.last + 1;
      // stamp() never goes back in a process run and starts above every recovered channel's
      // last timestamp, so the stamp is never below the channel's previous one: no clamp.
      this.stamp();
      const ms = this.tsMs;
      const sub = this.tsSub;
      const bytes = encodeMsgProto(seq, p.subject, p.reply, p.data, ms, sub);
      // a MsgProto is bigger than its PubMsg when the guid and clientID are short: one that
      // cannot be delivered (or redelivered) on this connection is refused, not stored (the
      // Go server stores it and its subscribers stall on it for good)
      if (bytes.length + REDELIVERY_BYTES > maxPayload) {
        this.reply(this.send, p.ackTo, encodePubAck(p.guid, tooLarge(bytes.length, maxPayload)));
        continue;
      }
      try {
        log.append(new StampedMsg(seq, bytes, ms, sub));
      } catch (err) {
        this.reply(this.send, p.ackTo, encodePubAck(p.guid, String((err as Error).message)));
        continue;
      }
      touched.add(ch);
      ok.push(p);
    }
    const now = Date.now();
    for (const ch of touched) {
      ch.lastActivity = now;
      ch.store.msgs.flush();
      this.deliverChannel(ch);
      ch.store.flushSubs();
    }
    for (const p of ok) this.pubAck(p.ackTo, p.guid);
  }

  private channelFor(name: string): Channel | string {
    const ch = this.channels.get(name);
    if (ch) return ch;
    const other = this.channelsLower.get(name.toLowerCase());
    if (other) {
      return `rejecting channel "${name}" because channel "${other.name}" alreay exists (different cases not allowed)`;
    }
    if (this.cfg.maxChannels > 0 && this.channels.size >= this.cfg.maxChannels) {
      return Errors.tooManyChannels;
    }
    try {
      const ch = this.addChannel(name, this.store.createChannel(name));
      this.armInactivity(ch);
      return ch;
    } catch (err) {
      return String((err as Error).message);
    }
  }

  private addChannel(name: string, store: ChannelStore): Channel {
    const limits = this.cfg.limitsFor(name);
    const ch: Channel = {
      name,
      store,
      plain: new Set(),
      groups: new Map(),
      durables: new Map(),
      byAckInbox: new Map(),
      byInbox: new Map(),
      subRecords: 0,
      nextSubId: 1,
      maxSubs: limits.maxSubsPerChannel,
      maxInactivity: limits.maxInactivity,
      lastActivity: Date.now(),
      inactivity: undefined,
    };
    this.channels.set(name, ch);
    this.channelsLower.set(name.toLowerCase(), ch);
    this.log.debug("channel created", { channel: name });
    return ch;
  }

  // ---------------------------------------------------------------- inactivity (§8)

  private hasOnlineSubs(ch: Channel): boolean {
    if (ch.plain.size > 0) return true;
    for (const g of ch.groups.values()) if (g.members.length > 0) return true;
    return false;
  }

  private stopInactivity(ch: Channel): void {
    if (ch.inactivity) clearTimeout(ch.inactivity);
    ch.inactivity = undefined;
  }

  /** Starts the delete timer of a channel left without online subscriptions. */
  private armInactivity(ch: Channel, delay = ch.maxInactivity): void {
    if (ch.maxInactivity <= 0 || ch.inactivity || this.closing) return;
    if (this.hasOnlineSubs(ch) || this.channels.get(ch.name) !== ch) return;
    if (delay === ch.maxInactivity) ch.lastActivity = Math.max(ch.lastActivity, Date.now());
    ch.inactivity = setTimeout(() => this.onInactivity(ch), delay);
  }

  private onInactivity(ch: Channel): void {
    ch.inactivity = undefined;
    if (this.closing || this.hasOnlineSubs(ch)) return;
    const idle = Date.now() - ch.lastActivity;
    if (idle < ch.maxInactivity) {
      this.armInactivity(ch, ch.maxInactivity - idle);
      return;
    }
    for (const sub of ch.durables.values()) this.clearTimer(sub);
    for (const g of ch.groups.values()) if (g.shadow) this.clearTimer(g.shadow);
    this.channels.delete(ch.name);
    this.channelsLower.delete(ch.name.toLowerCase());
    this.store.deleteChannel(ch.name);
    this.log.info("channel deleted after inactivity", { channel: ch.name });
  }

  // ---------------------------------------------------------------- delivery

  private deliverChannel(ch: Channel): void {
    for (const sub of ch.plain) this.deliverPlain(sub);
    for (const g of ch.groups.values()) this.deliverGroup(g);
  }

  private canSend(sub: Sub): boolean {
    return sub.initialized && sub.clientID !== "" && !sub.holdNew;
  }

  private deliverPlain(sub: Sub): void {
    if (!this.canSend(sub) || sub.stalled) return;
    const log = sub.channel.store.msgs;
    let seq = sub.lastSent + 1;
    if (seq < log.first) {
      seq = log.first;
      sub.lastSent = seq - 1;
    }
    const last = log.last;
    while (seq <= last) {
      const msg = log.lookup(seq);
      if (msg && !this.sendMsg(sub, msg, false)) break;
      if (sub.stalled) break;
      seq++;
    }
  }

  private deliverGroup(g: Group): void {
    if (g.members.length === 0) return;
    const log = g.members[0]!.channel.store.msgs;
    let seq = g.lastSent + 1;
    if (seq < log.first) {
      seq = log.first;
      g.lastSent = seq - 1;
    }
    const last = log.last;
    while (seq <= last && g.stalledCount < g.members.length) {
      const msg = log.lookup(seq);
      if (msg) {
        const member = this.pickMember(g);
        if (!member || !this.sendMsg(member, msg, false)) break;
      } else {
        g.lastSent = seq;
      }
      seq++;
    }
  }

  /** §6 member choice: fewest pending among healthy members, else the first; rotates. */
  private pickMember(g: Group): Sub | undefined {
    let best: Sub | undefined;
    let bestIdx = -1;
    const ms = g.members;
    for (let i = 0; i < ms.length; i++) {
      const s = ms[i]!;
      if (!s.initialized || s.stalled || s.hasFailedHB) continue;
      if (!best || s.pending.size < best.pending.size) {
        best = s;
        bestIdx = i;
      }
    }
    if (!best) {
      best = ms.find((s) => s.initialized);
      bestIdx = best ? ms.indexOf(best) : -1;
    }
    if (best && bestIdx === 0 && ms.length >= 2) {
      ms.shift();
      ms.push(best);
    }
    return best;
  }

  private setStalled(sub: Sub, stalled: boolean): void {
    if (sub.stalled === stalled) return;
    sub.stalled = stalled;
    if (sub.group) sub.group.stalledCount += stalled ? 1 : -1;
  }

  /**
   * Sends a message to a sub. `force` is a redelivery: it ignores maxInFlight and the hold,
   * and sets redelivered/redeliveryCount. Returns false when the sub cannot take it.
   */
  private sendMsg(sub: Sub, msg: StoredMsg, force: boolean): boolean {
    if (!sub.initialized || sub.clientID === "") return false;
    if (!force) {
      if (sub.holdNew) return false;
      if (sub.pending.size >= sub.maxInFlight) {
        this.setStalled(sub, true);
        return false;
      }
    }
    let bytes: Uint8Array = msg.bytes;
    const seq = msg.seq;
    if (force) {
      const counts = sub.group ? sub.group.redeliveries : sub.redeliveries;
      const n = (counts.get(seq) ?? 0) + 1;
      counts.set(seq, n);
      bytes = withRedelivery(msg.bytes, n);
    }
    if (bytes.length > this.maxPayload()) {
      this.undeliverable(sub, seq, bytes.length, force);
      return true;
    }
    try {
      this.out.publish(sub.inbox, bytes);
    } catch (err) {
      // one subscription's failed send must not escape (the Go server logs and carries on)
      this.log.error("delivery failed", { inbox: sub.inbox, seq, err: String(err) });
      return false;
    }
    const ackWaitMs = sub.ackWaitInSecs * 1000;
    const prev = sub.pending.get(seq);
    if (prev === undefined) {
      sub.pending.set(seq, Date.now() + ackWaitMs);
      sub.channel.store.addPending(sub.id, seq);
      if (sub.group) {
        if (seq > sub.group.lastSent) sub.group.lastSent = seq;
      } else if (seq > sub.lastSent) {
        sub.lastSent = seq;
      }
    } else {
      sub.pending.set(seq, (prev > 0 ? prev : Date.now()) + ackWaitMs);
    }
    if (!sub.timer) this.armTimer(sub, ackWaitMs);
    if (!force && sub.pending.size >= sub.maxInFlight) this.setStalled(sub, true);
    return true;
  }

  /** The largest payload the `send` connection may publish (its server's max_payload). */
  private maxPayload(): number {
    return this.send.info?.max_payload ?? Number.POSITIVE_INFINITY;
  }

  /**
   * Skips a message that can never be sent to `sub` (stored when max_payload was larger, e.g.
   * before a restart on another NATS server): it counts as sent and acknowledged, so the
   * subscription moves past it instead of stalling on it for good.
   */
  private undeliverable(sub: Sub, seq: number, bytes: number, force: boolean): void {
    this.log.error("message too large to deliver, skipped", {
      channel: sub.channel.name,
      seq,
      bytes,
      maxPayload: this.maxPayload(),
      clientID: sub.clientID,
      redelivery: force,
    });
    if (sub.group) {
      if (seq > sub.group.lastSent) sub.group.lastSent = seq;
    } else if (seq > sub.lastSent) {
      sub.lastSent = seq;
    }
    this.removePending(sub, seq, true);
  }

  // ---------------------------------------------------------------- acks and redelivery

  private onAck(m: Msg): void {
    if (this.closing) return;
    let ack: ReturnType<typeof decodeAck>;
    try {
      ack = decodeAck(m.data);
    } catch {
      this.malformed("Ack", m);
      return;
    }
    const ch = this.channels.get(ack.subject);
    if (!ch) return;
    const sub = ch.byAckInbox.get(m.subject);
    if (!sub) return;
    this.ackSeq(sub, ack.sequence);
  }

  private ackSeq(sub: Sub, seq: number): void {
    if (this.removePending(sub, seq, true)) return;
    const g = sub.group;
    if (!g) return;
    for (const other of g.members) {
      if (other !== sub && this.removePending(other, seq, true)) return;
    }
  }

  /** Removes a pending seq (an ack). Returns false if it was not pending. */
  private removePending(sub: Sub, seq: number, dropCount: boolean): boolean {
    if (!sub.pending.delete(seq)) return false;
    sub.channel.store.ack(sub.id, seq);
    if (dropCount) (sub.group ? sub.group.redeliveries : sub.redeliveries).delete(seq);
    if (sub.stalled && sub.pending.size < sub.maxInFlight) {
      this.setStalled(sub, false);
      if (sub.group) this.deliverGroup(sub.group);
      else this.deliverPlain(sub);
    }
    return true;
  }

  private armTimer(sub: Sub, ms: number): void {
    if (sub.timer) clearTimeout(sub.timer);
    // Node fires a longer timeout after 1 ms (ackWaitInSecs above ~24.8 days would spin);
    // an early fire finds nothing due and re-arms for the rest
    sub.timer = setTimeout(() => this.onAckTimeout(sub), Math.min(Math.max(0, ms), MAX_TIMEOUT));
  }

  private clearTimer(sub: Sub): void {
    if (sub.timer) clearTimeout(sub.timer);
    sub.timer = undefined;
  }

  /** Pending entries sorted by expiry, then seq; unknown expiries become ts + ackWait. */
  private sortedPending(sub: Sub): Array<[number, number]> {
    const ackWaitMs = sub.ackWaitInSecs * 1000;
    const log = sub.channel.store.msgs;
    for (const [seq, exp] of sub.pending) {
      if (exp === 0) {
        const msg = log.lookup(seq);
        const ts = msg ? Number(msg.timestamp / 1_000_000n) : Date.now();
        sub.pending.set(seq, ts + ackWaitMs);
      }
    }
    return [...sub.pending].sort((a, b) => a[1] - b[1] || a[0] - b[0]);
  }

  private onAckTimeout(sub: Sub): void {
    sub.timer = undefined;
    if (this.closing || sub.pending.size === 0 || sub.clientID === "") return;
    const ackWaitMs = sub.ackWaitInSecs * 1000;
    if (!sub.group && sub.hasFailedHB) {
      this.armTimer(sub, ackWaitMs);
      return;
    }
    const log = sub.channel.store.msgs;
    const now = Date.now();
    let next = 0;
    for (const [seq, exp] of this.sortedPending(sub)) {
      if (exp > now + 15) {
        next = exp - now;
        break;
      }
      if (!sub.pending.has(seq)) continue;
      const msg = log.lookup(seq);
      if (!msg) {
        this.removePending(sub, seq, true);
        continue;
      }
      if (sub.group) this.redeliverQueued(sub, msg);
      else this.sendMsg(sub, msg, true);
    }
    if (sub.clientID === "") return;
    this.armTimer(sub, next > 0 ? next : ackWaitMs);
  }

  private redeliverQueued(sub: Sub, msg: StoredMsg): void {
    const g = sub.group!;
    const target = this.pickMember(g) ?? sub;
    if (target === sub) {
      this.sendMsg(sub, msg, true);
      return;
    }
    this.sendMsg(target, msg, true);
    this.removePending(sub, msg.seq, false);
  }

  // ---------------------------------------------------------------- subscribe

  private subError(replyTo: string | undefined, error: string): void {
    this.reply(this.send, replyTo, encode(SubscriptionResponseSchema, { error }));
  }

  private computeLastSent(ch: Channel, req: SubscriptionRequest): number {
    const { startPosition: pos, startSequence: startSeq, startTimeDelta: delta } = req;
    const log = ch.store.msgs;
    const first = log.first;
    const last = log.last;
    switch (pos) {
      case StartPosition.NewOnly:
        return last;
      case StartPosition.LastReceived:
        return last > 0 ? last - 1 : 0;
      case StartPosition.First:
        return first > 0 ? first - 1 : 0;
      case StartPosition.TimeDeltaStart: {
        const seq = log.seqForTimestamp(this.nowNs() - delta);
        return seq > 0 ? seq - 1 : 0;
      }
      case StartPosition.SequenceStart: {
        const s =
          startSeq > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(startSeq);
        if (s < first) return first - 1;
        if (s > last) return last;
        return s > 0 ? s - 1 : 0;
      }
      default:
        return last;
    }
  }

  private newSub(
    ch: Channel,
    fields: Pick<
      Sub,
      | "clientID"
      | "inbox"
      | "maxInFlight"
      | "ackWaitInSecs"
      | "durableName"
      | "isDurable"
      | "qGroup"
      | "group"
      | "lastSent"
    >,
    id: number = ch.nextSubId++,
  ): Sub {
    return {
      ...fields,
      id,
      channel: ch,
      recordClientID: fields.clientID,
      ackInbox: "",
      pending: new Map(),
      redeliveries: new Map(),
      stalled: false,
      initialized: false,
      holdNew: false,
      hasFailedHB: false,
      timer: undefined,
      ackSub: undefined,
    };
  }

  private record(sub: Sub): SubRecord {
    return {
      id: sub.id,
      clientID: sub.clientID !== "" ? sub.clientID : sub.qGroup !== "" ? "" : sub.recordClientID,
      qGroup: sub.qGroup,
      inbox: sub.inbox,
      ackInbox: sub.ackInbox,
      maxInFlight: sub.maxInFlight,
      ackWaitInSecs: sub.ackWaitInSecs,
      durableName: sub.durableName,
      lastSent: sub.group ? sub.group.lastSent : sub.lastSent,
      isDurable: sub.isDurable,
      isClosed: sub.clientID === "",
    };
  }

  private listenAcks(sub: Sub): void {
    const ch = sub.channel;
    sub.ackSub = this.acks.subscribe(sub.ackInbox, { callback: (_e, m) => this.onAck(m) });
    ch.byAckInbox.set(sub.ackInbox, sub);
    ch.byInbox.set(sub.inbox, sub);
  }

  private async onSubscribe(m: Msg): Promise<void> {
    if (this.closing) return;
    let req: SubscriptionRequest;
    try {
      req = decode(SubscriptionRequestSchema, m.data);
    } catch {
      this.malformed("SubscriptionRequest", m);
      return this.subError(m.reply, Errors.invalidSubReq);
    }
    if (req.clientID === "") return this.subError(m.reply, Errors.missingClient);
    if (req.ackWaitInSecs <= 0) return this.subError(m.reply, Errors.invalidAckWait);
    if (req.maxInFlight <= 0) return this.subError(m.reply, Errors.invalidMaxInflight);
    if (req.startPosition < 0 || req.startPosition > 4) {
      return this.subError(m.reply, Errors.invalidStart);
    }
    if (!isValidChannel(req.subject)) return this.subError(m.reply, Errors.invalidSubject);
    const client = this.clients.get(req.clientID);
    if (!client) return this.subError(m.reply, Errors.unknownClient);
    const ch = this.channelFor(req.subject);
    if (typeof ch === "string") return this.subError(m.reply, ch);
    this.stopInactivity(ch);
    try {
      await this.subscribeOn(ch, client, req, m);
    } finally {
      this.armInactivity(ch);
    }
  }

  private async subscribeOn(
    ch: Channel,
    client: Client,
    req: SubscriptionRequest,
    m: Msg,
  ): Promise<void> {
    if (req.qGroup !== "" && req.durableName.includes(":")) {
      return this.subError(m.reply, Errors.durableQueueColon);
    }
    // an inbox that cannot stand in a PUB frame would crash or corrupt every delivery
    if (!isFrameSubject(req.inbox)) return this.subError(m.reply, Errors.invalidSubReq);
    const settings = {
      clientID: req.clientID,
      inbox: req.inbox,
      maxInFlight: req.maxInFlight,
      ackWaitInSecs: req.ackWaitInSecs,
    };
    const tooMany = () => ch.maxSubs > 0 && ch.subRecords >= ch.maxSubs;
    let sub: Sub;
    let resumed = false;
    if (req.qGroup !== "") {
      const key = req.durableName !== "" ? `${req.durableName}:${req.qGroup}` : req.qGroup;
      let g = ch.groups.get(key);
      if (g && g.members.length === 0 && g.shadow) {
        sub = g.shadow;
        g.shadow = undefined;
        Object.assign(sub, settings);
        sub.recordClientID = req.clientID;
        resumed = true;
      } else {
        if (tooMany()) return this.subError(m.reply, Errors.tooManySubs);
        if (!g) {
          g = {
            key,
            durable: req.durableName !== "",
            members: [],
            lastSent: this.computeLastSent(ch, req),
            stalledCount: 0,
            shadow: undefined,
            redeliveries: new Map(),
          };
          ch.groups.set(key, g);
        }
        sub = this.newSub(ch, {
          ...settings,
          durableName: "",
          isDurable: g.durable,
          qGroup: key,
          group: g,
          lastSent: 0,
        });
      }
      g.members.push(sub);
    } else {
      const key = `${req.clientID}-${req.subject}-${req.durableName}`;
      const existing = req.durableName !== "" ? ch.durables.get(key) : undefined;
      if (existing && existing.clientID !== "") {
        const owner = this.clients.get(existing.clientID);
        if (!this.cfg.replaceDurable || !owner) {
          return this.subError(m.reply, Errors.duplicateDurable);
        }
        owner.subs.delete(existing);
        this.removeSub(existing, true);
      }
      if (existing) {
        sub = existing;
        Object.assign(sub, settings);
        resumed = true;
      } else {
        if (tooMany()) return this.subError(m.reply, Errors.tooManySubs);
        sub = this.newSub(ch, {
          ...settings,
          durableName: req.durableName,
          isDurable: req.durableName !== "",
          qGroup: "",
          group: undefined,
          lastSent: this.computeLastSent(ch, req),
        });
        if (sub.isDurable) ch.durables.set(key, sub);
      }
      ch.plain.add(sub);
    }
    if (resumed) {
      sub.stalled = false;
      sub.hasFailedHB = false;
      sub.holdNew = sub.pending.size > 0;
      if (sub.group) sub.group.stalledCount = 0;
    } else {
      ch.subRecords++;
    }
    sub.hasFailedHB = client.fhb > 0;
    client.subs.add(sub);
    sub.ackInbox = createInbox();
    this.listenAcks(sub);
    if (resumed) ch.store.updateSub(this.record(sub));
    else ch.store.createSub(this.record(sub));
    ch.store.flushSubs();
    await this.acks.flush();
    this.reply(this.send, m.reply, encode(SubscriptionResponseSchema, { ackInbox: sub.ackInbox }));
    sub.initialized = true;
    this.log.debug("subscription created", {
      clientID: sub.clientID,
      channel: ch.name,
      id: sub.id,
      group: sub.qGroup,
      durable: sub.durableName,
      resumed,
    });
    this.startSub(sub, resumed);
  }

  /** The §5 sub-start step: redeliver pending (durables), release the hold, send the backlog. */
  private startSub(sub: Sub, redeliverPending: boolean): void {
    if (sub.clientID === "") return;
    if (redeliverPending && sub.pending.size > 0) {
      const log = sub.channel.store.msgs;
      for (const seq of [...sub.pending.keys()].sort((a, b) => a - b)) {
        const msg = log.lookup(seq);
        if (!msg) this.removePending(sub, seq, true);
        else this.sendMsg(sub, msg, true);
      }
    }
    sub.holdNew = false;
    if (sub.pending.size >= sub.maxInFlight) this.setStalled(sub, true);
    if (sub.group) this.deliverGroup(sub.group);
    else this.deliverPlain(sub);
  }

  // ---------------------------------------------------------------- unsubscribe and close

  /** Applies every ack that reached the acks connection before now. */
  private async barrier(): Promise<void> {
    if (!this.acks.isClosed()) await this.acks.flush();
  }

  private async onUnsubscribe(m: Msg, isClose: boolean): Promise<void> {
    if (this.closing) return;
    let req: UnsubscribeRequest;
    try {
      req = decode(UnsubscribeRequestSchema, m.data);
    } catch {
      this.malformed("UnsubscribeRequest", m);
      return this.subError(m.reply, Errors.invalidUnsubReq);
    }
    await this.barrier();
    const ch = this.channels.get(req.subject);
    if (!ch) return this.subError(m.reply, Errors.unknownChannel);
    const sub = ch.byAckInbox.get(req.inbox) ?? ch.byInbox.get(req.inbox);
    if (!sub) return this.subError(m.reply, Errors.invalidSub);
    const client = this.clients.get(req.clientID);
    if (!client?.subs.has(sub)) return this.subError(m.reply, Errors.unknownClient);
    client.subs.delete(sub);
    this.removeSub(sub, isClose);
    ch.store.flushSubs();
    this.armInactivity(ch);
    this.reply(this.send, m.reply, EMPTY);
  }

  private removeSub(sub: Sub, isClose: boolean): void {
    const ch = sub.channel;
    sub.ackSub?.unsubscribe();
    sub.ackSub = undefined;
    this.clearTimer(sub);
    if (ch.byAckInbox.get(sub.ackInbox) === sub) ch.byAckInbox.delete(sub.ackInbox);
    if (ch.byInbox.get(sub.inbox) === sub) ch.byInbox.delete(sub.inbox);
    const g = sub.group;
    if (g) {
      const idx = g.members.indexOf(sub);
      if (idx >= 0) g.members.splice(idx, 1);
      if (sub.stalled) g.stalledCount--;
      sub.stalled = false;
      if (g.members.length > 0) {
        const pending = [...sub.pending];
        this.deleteRecord(sub);
        this.handOver(pending, g);
        return;
      }
      if (g.durable && isClose) {
        sub.clientID = "";
        sub.initialized = false;
        g.shadow = sub;
        ch.store.updateSub(this.record(sub));
        return;
      }
      ch.groups.delete(g.key);
      this.deleteRecord(sub);
      return;
    }
    ch.plain.delete(sub);
    if (sub.isDurable && isClose) {
      sub.clientID = "";
      sub.initialized = false;
      sub.stalled = false;
      ch.store.updateSub(this.record(sub));
      return;
    }
    if (sub.isDurable) ch.durables.delete(`${sub.recordClientID}-${ch.name}-${sub.durableName}`);
    this.deleteRecord(sub);
  }

  private deleteRecord(sub: Sub): void {
    sub.clientID = "";
    sub.pending.clear();
    sub.channel.subRecords--;
    sub.channel.store.deleteSub(sub.id);
  }

  /** §7: a leaving queue member's pending messages go round-robin to the others. */
  private handOver(pending: Array<[number, number]>, g: Group): void {
    const ms = g.members;
    // the group's position survives on a remaining member's record
    ms[0]!.channel.store.updateSub(this.record(ms[0]!));
    const entries = pending.sort((a, b) => a[1] - b[1] || a[0] - b[0]);
    const touched = new Set<Sub>();
    entries.forEach(([seq], i) => {
      const to = ms[i % ms.length]!;
      if (!to.pending.has(seq)) {
        to.pending.set(seq, 1);
        to.channel.store.addPending(to.id, seq);
      }
      touched.add(to);
    });
    for (const to of touched) this.armTimer(to, 100);
  }

  private async onClose(m: Msg): Promise<void> {
    if (this.closing) return;
    const fail = (error: string) =>
      this.reply(this.general, m.reply, encode(CloseResponseSchema, { error }));
    let clientID: string;
    try {
      clientID = decode(CloseRequestSchema, m.data).clientID;
    } catch {
      this.malformed("CloseRequest", m);
      return fail(Errors.invalidCloseReq);
    }
    await this.barrier();
    const c = this.clients.get(clientID);
    if (!c) return fail(Errors.unknownClient);
    this.closeClient(c);
    this.reply(this.general, m.reply, EMPTY);
  }

  /** Unregisters a client and closes its subscriptions (§7). */
  private closeClient(c: Client): void {
    c.closed = true;
    if (c.hbTimer) clearTimeout(c.hbTimer);
    c.hbTimer = undefined;
    this.clients.delete(c.rec.id);
    if (c.rec.connID !== "" && this.clientsByConn.get(c.rec.connID) === c) {
      this.clientsByConn.delete(c.rec.connID);
    }
    this.store.deleteClient(c.rec.id);
    const touched = new Set<Channel>();
    for (const sub of c.subs) {
      this.removeSub(sub, true);
      touched.add(sub.channel);
    }
    c.subs.clear();
    for (const ch of touched) {
      ch.store.flushSubs();
      this.armInactivity(ch);
    }
    this.log.debug("client closed", { clientID: c.rec.id });
  }

  // ---------------------------------------------------------------- recovery

  private recover(clients: ClientRecord[], channels: RecoveredChannel[]): Sub[] {
    for (const rec of clients) this.addClient(rec);
    const online: Sub[] = [];
    for (const rc of channels) {
      const ch = this.addChannel(rc.name, rc.store);
      const newest = rc.store.msgs.lookup(rc.store.msgs.last);
      if (newest) this.clockFloor(newest.timestamp);
      for (const { record: r, pending } of rc.subs) {
        ch.nextSubId = Math.max(ch.nextSubId, r.id + 1);
        const maxPending = pending.reduce((a, b) => Math.max(a, b), 0);
        const lastSent = Math.max(r.lastSent, maxPending);
        const client = r.clientID !== "" ? this.clients.get(r.clientID) : undefined;
        const isOnline = client !== undefined && !r.isClosed;
        if (!r.isDurable && !isOnline) {
          rc.store.deleteSub(r.id);
          continue;
        }
        let group: Group | undefined;
        if (r.qGroup !== "") {
          group = ch.groups.get(r.qGroup);
          if (!group) {
            group = {
              key: r.qGroup,
              durable: r.isDurable,
              members: [],
              lastSent: 0,
              stalledCount: 0,
              shadow: undefined,
              redeliveries: new Map(),
            };
            ch.groups.set(r.qGroup, group);
          }
          if (!isOnline && r.clientID !== "") {
            rc.store.deleteSub(r.id);
            continue;
          }
          group.lastSent = Math.max(group.lastSent, lastSent);
        }
        const sub = this.newSub(
          ch,
          {
            clientID: isOnline ? r.clientID : "",
            inbox: r.inbox,
            maxInFlight: r.maxInFlight,
            ackWaitInSecs: r.ackWaitInSecs,
            durableName: r.durableName,
            isDurable: r.isDurable,
            qGroup: r.qGroup,
            group,
            lastSent,
          },
          r.id,
        );
        sub.recordClientID = r.clientID;
        sub.ackInbox = r.ackInbox;
        for (const seq of pending) sub.pending.set(seq, 0);
        ch.subRecords++;
        if (group) {
          if (isOnline) group.members.push(sub);
          else if (!group.shadow || lastSent > group.shadow.lastSent) {
            if (group.shadow) {
              ch.subRecords--;
              rc.store.deleteSub(group.shadow.id);
            }
            group.shadow = sub;
          } else {
            ch.subRecords--;
            rc.store.deleteSub(r.id);
            continue;
          }
        } else {
          if (isOnline) ch.plain.add(sub);
          if (r.isDurable) ch.durables.set(`${r.clientID}-${ch.name}-${r.durableName}`, sub);
        }
        if (isOnline && client) {
          client.subs.add(sub);
          this.listenAcks(sub);
          sub.initialized = true;
          sub.holdNew = sub.pending.size > 0;
          if (sub.pending.size >= sub.maxInFlight) this.setStalled(sub, true);
          online.push(sub);
        }
      }
      for (const g of ch.groups.values()) {
        if (g.members.length === 0 && !g.shadow) ch.groups.delete(g.key);
      }
      rc.store.flushSubs();
      this.armInactivity(ch);
    }
    return online;
  }

  /** §8: after startup each recovered online sub redelivers what is past due and resumes. */
  private startRecoveredSub(sub: Sub): void {
    const now = Date.now();
    const log = sub.channel.store.msgs;
    let next = Number.POSITIVE_INFINITY;
    for (const [seq, exp] of this.sortedPending(sub)) {
      const msg = log.lookup(seq);
      if (!msg) {
        sub.pending.delete(seq);
        sub.channel.store.ack(sub.id, seq);
        continue;
      }
      if (exp <= now + 15) this.sendMsg(sub, msg, true);
      else next = Math.min(next, exp - now);
    }
    if (sub.pending.size > 0) {
      this.armTimer(sub, Number.isFinite(next) ? next : sub.ackWaitInSecs * 1000);
    }
    sub.holdNew = false;
    if (sub.pending.size < sub.maxInFlight) this.setStalled(sub, false);
    if (sub.group) this.deliverGroup(sub.group);
    else this.deliverPlain(sub);
  }
}
