/**
 * The Session class: the connect handshake, loss and heal, the publish window, subscription
 * requests and acks, close. Its collaborators: pings.ts (loss detection), outbox.ts (batched
 * writes), ack-sweep.ts (PubAck timeouts), subscription.ts (each subscription and its resume).
 */

import {
  CloseRequestSchema,
  CloseResponseSchema,
  ConnectRequestSchema,
  encode,
  SubscriptionRequestSchema,
  SubscriptionResponseSchema,
  UnsubscribeRequestSchema,
} from "@stan-ts/proto";
import { abortError, type CallOptions, withCancel } from "../cancel.js";
import { decodePubAck, encodeAck, encodeConstField, encodePubMsg, varintSize } from "../codec.js";
import {
  ErrorCode,
  hasErrorCode,
  isStanError,
  Messages,
  StanArgumentError,
  StanConnectionError,
  type StanError,
  StanProtocolError,
  StanServerError,
  StanSubscriptionError,
  StanTimeoutError,
} from "../errors.js";
import { FrameWriter } from "../frames.js";
import { createInbox, nuid } from "../nuid.js";
import { GUID_LEN, PendingQueue } from "../pending.js";
import {
  isStatusMessage,
  type NatsConnectionLike,
  type NatsMsgLike,
  type NatsSubscriptionLike,
} from "../transport.js";
import { validateSubject, validateTimeout } from "../validate.js";
import { AckSweep } from "./ack-sweep.js";
import { watchers, watchNatsClosed } from "./nats-watch.js";
import { Outbox } from "./outbox.js";
import { Pinger } from "./pings.js";
import { finish, type PendingPub, PublishBatch } from "./publish-batch.js";
import { PublishWindow } from "./publish-window.js";
import {
  decodeConnectResponse,
  decodeOrProtocolError,
  isTransientResubscribeError,
  mapRequestError,
  notDeleted,
} from "./replies.js";
import { CoreSubscription } from "./subscription.js";
import type {
  BatchOutcome,
  SentPublish,
  ServerSubjects,
  SessionEvent,
  SessionOptions,
  SubscribeParams,
  SubscriptionSink,
} from "./types.js";

const noop = () => {};

// One executor for every publish's promise: it hands the resolvers over through these two
// variables (read right after `new Promise`, which runs it synchronously), so creating a
// promise allocates no closure.
let capturedResolve: ((guid: string) => void) | undefined;
let capturedReject: ((err: Error) => void) | undefined;
function captureResolvers(resolve: (guid: string) => void, reject: (err: Error) => void): void {
  capturedResolve = resolve;
  capturedReject = reject;
}

const EMPTY = new Uint8Array(0);

/** A guid's length, to size a message before its guid is drawn. */
const GUID_PROBE = "x".repeat(GUID_LEN);

/** Subscription requests in flight at once while a healed session re-creates its subscriptions. */
const RESUBSCRIBE_CONCURRENCY = 16;

/**
 * One NATS Streaming session over a NATS connection: the connect handshake, heartbeats,
 * pings, the publish window and ack timeouts, subscriptions and acks, close.
 *
 * This is the engine behind `stan-ts`; application code uses the `stan-ts` package.
 */
export class Session {
  readonly clientId: string;
  readonly clusterId: string;
  /** Per-session unique id (NUID bytes) sent with publishes and pings; new after a heal. */
  connId: Uint8Array;
  private readonly opts: SessionOptions;
  private readonly nc: NatsConnectionLike;
  private subjects!: ServerSubjects;
  private hbSub: NatsSubscriptionLike | undefined;
  private ackSub: NatsSubscriptionLike | undefined;
  private readonly ackInbox: string;
  private readonly pubOpts: { reply: string };
  private readonly clientIdField: Uint8Array;
  private connIdField: Uint8Array;
  private readonly pubSubjects = new Map<string, string>();
  /** Publishes awaiting their PubAck, in send order; their guids come from it. */
  private readonly pending = new PendingQueue<PendingPub>();
  /** At most `maxPubAcksInflight` of them; later publishes wait for room. */
  private readonly window: PublishWindow;
  /** Expires publishes whose PubAck is late. */
  private readonly sweep: AckSweep;
  private readonly pings: Pinger;
  private readonly subs = new Set<CoreSubscription>();
  private readonly listeners = new Set<(e: SessionEvent) => void>();
  private state: "connecting" | "open" | "reconnecting" | "closing" | "closed" | "lost" =
    "connecting";
  private reopenWaiters: Array<() => void> = [];
  /**
   * Open and restored: false from the loss of a session until the heal has re-created every
   * subscription, so that subscription calls wait for that (their ack inboxes change).
   */
  private ready = false;
  /** Counts lost sessions: a reply to a request of an earlier session is of no use now. */
  private epoch = 0;
  private natsClosedWatch = false;
  private endError: StanConnectionError | undefined;
  private closePromise: Promise<void> | undefined;
  private malformed = 0;
  /** Publishes and acks waiting to be handed to NATS together. */
  private readonly outbox: Outbox;

  private constructor(nc: NatsConnectionLike, opts: SessionOptions) {
    this.nc = nc;
    this.opts = opts;
    this.clientId = opts.clientId;
    this.clusterId = opts.clusterId;
    this.connId = new TextEncoder().encode(nuid.next());
    this.ackInbox = `_STAN.acks.${nuid.next()}`;
    this.pubOpts = { reply: this.ackInbox };
    this.clientIdField = encodeConstField(1, opts.clientId);
    this.connIdField = encodeConstField(6, this.connId);
    const frames = opts.framedWrites === false ? undefined : FrameWriter.for(nc);
    this.outbox = new Outbox(
      nc,
      frames,
      () => this.state === "open",
      (guid, err) =>
        this.settle(
          guid,
          new StanConnectionError(
            ErrorCode.ConnectionLost,
            `stan: publish failed: ${String(err)}`,
            {
              cause: err,
            },
          ),
        ),
    );
    this.pings = new Pinger(opts.pingInterval, opts.pingMaxOut, {
      request: (bytes, timeout) => nc.request(this.subjects.pingRequests, bytes, { timeout }),
      isOpen: () => this.state === "open",
      protocolError: (err) => this.reportProtocolError(err),
      missed: (missed, maxOut) => this.emit({ type: "ping-missed", missed, maxOut }),
      lost: (reason) => this.lose(reason),
    });
    this.window = new PublishWindow(opts.maxPubAcksInflight, this.pending, () =>
      this.checkUsable(),
    );
    this.sweep = new AckSweep(this.pending, (p) =>
      this.settle(p.guid, new StanTimeoutError(ErrorCode.PubAckTimeout, Messages.pubAckTimeout)),
    );
  }

  /** Opens a session: registers with the streaming server and starts pings. */
  static async open(
    nc: NatsConnectionLike,
    opts: SessionOptions,
    call?: CallOptions,
  ): Promise<Session> {
    const s = new Session(nc, opts);
    await s.handshake(call);
    return s;
  }

  /** @internal Its NATS connection closed. */
  natsClosed(): void {
    this.fail("stan: NATS connection closed");
  }

  /**
   * True until the session is closed or lost, healing included: while it heals itself
   * ({@link Session.isReconnecting}) calls are accepted and wait for it.
   */
  get isOpen(): boolean {
    return this.state === "open" || this.state === "reconnecting";
  }

  /** True while a lost session heals itself (until its subscriptions are re-created). */
  get isReconnecting(): boolean {
    return this.state === "reconnecting" || (this.state === "open" && !this.ready);
  }

  /**
   * The NATS server's max_payload, read at each use: after NATS reconnects to another server
   * its limit may differ, and a frame over it would make that server close the connection.
   */
  private get maxPayload(): number {
    return this.nc.info?.max_payload ?? 1024 * 1024;
  }

  /** Why the session ended, if it did. */
  get error(): StanConnectionError | undefined {
    return this.endError;
  }

  /** Number of publishes awaiting their PubAck. */
  get pendingPublishes(): number {
    return this.pending.size;
  }

  /** Malformed messages received from the network (dropped, never delivered). */
  get protocolErrors(): number {
    return this.malformed;
  }

  /** @internal Counts and reports a malformed message. */
  reportProtocolError(err: unknown): void {
    this.malformed++;
    const error = isStanError(err)
      ? err
      : new StanProtocolError(ErrorCode.ProtocolError, "stan: malformed message from the network", {
          cause: err,
        });
    this.emit({ type: "protocol-error", error });
  }

  /** Registers a listener for session events; returns a function that removes it. */
  onEvent(listener: (e: SessionEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(e: SessionEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch {
        // a listener's failure is its own
      }
    }
  }

  private async handshake(call?: CallOptions): Promise<void> {
    const nc = this.nc;
    // A fresh heartbeat inbox each time: when healing, the server probes the old one, gets
    // no responders, and replaces the old registration at once.
    const hbInbox = createInbox();
    this.hbSub = nc.subscribe(hbInbox, {
      callback: (_err, msg) => {
        if (msg.reply) nc.publish(msg.reply);
      },
    });
    if (!this.ackSub) {
      this.ackSub = nc.subscribe(this.ackInbox, {
        callback: (_err, msg) => this.onPubAck(msg),
      });
    }
    const pingSecs = Math.max(1, Math.round(this.opts.pingInterval / 1000));
    const req = encode(ConnectRequestSchema, {
      clientID: this.clientId,
      heartbeatInbox: hbInbox,
      protocol: 1,
      connID: this.connId,
      pingInterval: pingSecs,
      pingMaxOut: this.opts.pingMaxOut,
    });
    const subject = `${this.opts.discoverPrefix}.${this.clusterId}`;
    let reply: NatsMsgLike;
    try {
      reply = await withCancel(
        nc.request(subject, req, { timeout: this.opts.connectTimeout }),
        call,
        "connect",
      );
    } catch (err) {
      this.abandonHandshake();
      throw mapRequestError(err, Messages.connectTimeout, ErrorCode.ConnectTimeout);
    }
    let response: ReturnType<typeof decodeConnectResponse>;
    try {
      response = decodeConnectResponse(reply.data);
    } catch (err) {
      this.abandonHandshake();
      throw err;
    }
    if (response.error) {
      this.abandonHandshake();
      throw new StanServerError(ErrorCode.ServerError, response.error);
    }
    const r = response;
    if (this.state !== "connecting" && this.state !== "reconnecting") {
      // close() (or a fatal loss) came while this connect request was in flight: the server
      // has registered a session nobody wants. Do not revive it; release it on the server
      // (best effort) so the clientID is free, and stop answering its heartbeats.
      this.hbSub.unsubscribe();
      if (r.closeRequests && !nc.isClosed()) {
        const req = encode(CloseRequestSchema, { clientID: this.clientId });
        nc.request(r.closeRequests, req, { timeout: this.opts.connectTimeout }).catch(noop);
      }
      throw this.checkOpen() as StanConnectionError;
    }
    this.subjects = {
      pubPrefix: r.pubPrefix,
      subRequests: r.subRequests,
      unsubRequests: r.unsubRequests,
      subCloseRequests: r.subCloseRequests,
      closeRequests: r.closeRequests,
      pingRequests: r.pingRequests,
    };
    this.pubSubjects.clear();
    this.pings.reset();
    // A first open is ready at once; a healed one once restore() re-created the subscriptions.
    if (this.state === "connecting") this.ready = true;
    this.state = "open";
    if (r.protocol >= 1 && r.pingInterval !== 0 && r.pingRequests) {
      this.pings.start(this.connId);
    }
    if (!this.natsClosedWatch) {
      this.natsClosedWatch = true;
      watchNatsClosed(nc, this);
    }
    this.emit({ type: "connected", clientId: this.clientId });
  }

  /**
   * Undoes a failed handshake's NATS subscriptions: the heartbeat inbox always, the ack
   * inbox too when the session never opened (on a borrowed connection it would outlive us).
   */
  private abandonHandshake(): void {
    this.hbSub?.unsubscribe();
    if (this.state === "connecting") {
      this.ackSub?.unsubscribe();
      this.ackSub = undefined;
    }
  }

  // ---------------------------------------------------------------- loss and heal

  /**
   * The session was lost (pings, replaced client). With self-healing on, it registers again
   * and pending work waits; otherwise it ends as {@link Session.fail} does.
   */
  lose(reason: string, cause?: unknown): void {
    if (this.state !== "open") return;
    if (this.opts.reconnect === false || this.nc.isClosed()) {
      this.fail(reason, cause);
      return;
    }
    const error = new StanConnectionError(ErrorCode.ConnectionLost, reason, { cause });
    this.state = "reconnecting";
    this.ready = false;
    this.epoch++;
    this.outbox.flush(); // not open: drops the outbox (pending publishes are re-sent after the heal)
    this.pings.stop();
    try {
      this.hbSub?.unsubscribe();
    } catch {
      // connection gone
    }
    for (const sub of this.subs) sub.lost();
    this.emit({ type: "disconnected", error });
    void this.heal(error);
  }

  /**
   * Ends the session for good: pending publishes, requests and subscriptions end with a
   * {@link StanConnectionError}. Reported once.
   */
  fail(reason: string, cause?: unknown): void {
    if (this.state === "closing" || this.state === "closed" || this.state === "lost") return;
    this.state = "lost";
    this.outbox.flush(); // not open: drops the outbox
    const error = new StanConnectionError(ErrorCode.ConnectionLost, reason, { cause });
    this.endError = error;
    this.shutdown(error);
    this.emit({ type: "connection-lost", error });
  }

  private async heal(lostWith: StanConnectionError): Promise<void> {
    const o = this.opts.reconnect || {};
    const maxAttempts = o.maxAttempts ?? -1;
    let delay = o.initialDelay ?? 250;
    const maxDelay = o.maxDelay ?? 5000;
    let attempt = 0;
    let lastError: StanError = lostWith;
    let duplicates = 0;
    while (this.state === "reconnecting") {
      attempt++;
      if (maxAttempts >= 0 && attempt > maxAttempts) {
        this.fail(
          `stan: reconnect gave up after ${maxAttempts} attempts: ${lastError.message}`,
          lastError,
        );
        return;
      }
      const wait = attempt === 1 ? 0 : Math.round(delay * (0.75 + Math.random() * 0.5));
      this.emit({ type: "reconnecting", attempt, delay: wait, lastError });
      if (wait > 0) {
        await new Promise<void>((r) => {
          const t = setTimeout(r, wait);
          this.reopenWaiters.push(() => {
            clearTimeout(t);
            r();
          });
        });
        if (this.state !== "reconnecting") return;
        delay = Math.min(maxDelay, delay * 2);
      }
      this.connId = new TextEncoder().encode(nuid.next());
      this.connIdField = encodeConstField(6, this.connId);
      try {
        await this.handshake();
      } catch (err) {
        lastError = err as StanError;
        if (this.nc.isClosed()) {
          this.fail("stan: NATS connection closed", err);
          return;
        }
        const text = (err as Error).message;
        if (/invalid clientID|invalid connection request/.test(text)) {
          this.fail(text, err);
          return;
        }
        // Another live client holds the ID (we were really replaced): do not fight it forever.
        if (text === "stan: clientID already registered" && ++duplicates >= 5) {
          this.fail(text, err);
          return;
        }
        continue;
      }
      // handshake() opened the session, unless close() raced it (the await widens the state)
      if ((this.state as Session["state"]) !== "open") return;
      await this.restore(attempt);
      return;
    }
  }

  /** After a heal: re-create subscriptions, re-send unacknowledged publishes, wake waiters. */
  private async restore(attempts: number): Promise<void> {
    // First, synchronously: publishes made from now on (the session is open again) must not
    // overtake those that waited through the outage.
    let count = 0;
    try {
      for (const p of this.pending) {
        this.nc.publish(
          this.pubSubject(p.subject),
          encodePubMsg(this.clientIdField, p.guid, p.subject, p.data, this.connIdField),
          this.pubOpts,
        );
        count++;
      }
    } catch (err) {
      // NATS refused (it is closing): this runs inside the heal, nobody awaits it, so end the
      // session with the cause instead of letting it escape as an unhandled rejection.
      this.fail(`stan: re-sending publishes after a heal failed: ${(err as Error).message}`, err);
      return;
    }
    if (count > 0) this.emit({ type: "republished", count });
    // Subscriptions are re-created concurrently (a bounded number of requests at a time), so
    // a client with many of them heals in a few round trips rather than one per subscription.
    // After a transient failure no new request starts, and the session is lost again only
    // once those in flight have settled: none of them can then land in the next session.
    const subs = [...this.subs];
    let next = 0;
    let transient: StanError | undefined;
    const worker = async (): Promise<void> => {
      while (next < subs.length && this.state === "open" && !transient) {
        const error = await this.resubscribe(subs[next++] as CoreSubscription);
        transient ??= error;
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(RESUBSCRIBE_CONCURRENCY, subs.length) }, worker),
    );
    if (transient && this.state === "open") {
      // The server went away (or forgot this client) while the session was being restored:
      // heal again and re-create every subscription, rather than give one up.
      this.lose(`stan: resubscribe failed: ${transient.message}`, transient);
      return;
    }
    if (this.state !== "open") return;
    this.ready = true;
    this.wakeReopen();
    this.window.wake();
    this.emit({ type: "reconnected", attempts });
  }

  /**
   * Re-creates one subscription after a heal. Returns a transient error (the server is gone
   * or forgot this client) for the caller to heal again; any other failure ends `sub`.
   */
  private async resubscribe(sub: CoreSubscription): Promise<StanError | undefined> {
    if (!this.subs.has(sub)) return undefined; // closed or unsubscribed meanwhile
    try {
      await sub.resubscribe();
      if (this.state !== "open") return undefined;
      if (!this.subs.has(sub)) {
        // Given up while its request was in flight (closed, or an unsubscribe that timed out
        // waiting): take the new registration offline, or a durable stays online on a dead inbox.
        this.closeOnServer(sub);
        return undefined;
      }
      this.emit({
        type: "resubscribed",
        subject: sub.params.subject,
        durableName: sub.params.durableName,
        queue: sub.params.queue,
      });
    } catch (err) {
      if (this.state !== "open") return undefined;
      const error = err as StanError;
      if (isTransientResubscribeError(error)) return error;
      this.subs.delete(sub);
      this.emit({ type: "resubscribe-failed", subject: sub.params.subject, error });
      sub.terminate(error);
    }
    return undefined;
  }

  private wakeReopen(): void {
    for (const w of this.reopenWaiters.splice(0)) w();
  }

  /**
   * @internal A healed non-durable found that the server numbers its channel anew (a memory
   * store restarted): re-create it from the first message. Its delivery inbox is dropped now;
   * a heal that comes meanwhile re-creates it the same way.
   */
  async restartSubscription(sub: CoreSubscription): Promise<void> {
    sub.detach();
    if (sub.resubscribing) await sub.resubscribing; // the heal's own request for it
    if (this.state !== "open" || sub.isEnded || !this.subs.has(sub)) return;
    this.closeOnServer(sub);
    const error = await this.resubscribe(sub);
    if (error && this.state === "open") {
      this.lose(`stan: resubscribe failed: ${error.message}`, error);
    }
  }

  /** Best effort: asks the server to take `sub`'s registration offline (a durable keeps its state). */
  private closeOnServer(sub: CoreSubscription): void {
    // without a close request (a pre-0.4 server), only a non-durable may be unsubscribed
    const subject =
      this.subjects.subCloseRequests || (sub.params.durableName ? "" : this.subjects.unsubRequests);
    if (!subject || !sub.ackInbox || this.state !== "open") return;
    const req = encode(UnsubscribeRequestSchema, {
      clientID: this.clientId,
      subject: sub.params.subject,
      inbox: sub.ackInbox,
      durableName: sub.params.durableName ?? "",
    });
    try {
      this.flushThen(() => this.nc.publish(subject, req));
    } catch {
      // the connection is going: the server drops the registration with it
    }
  }

  /** Waits until the session is open and restored (bounded by the call's options or `limit` ms). */
  private waitOpen(call: CallOptions | undefined, what: string, limit: number): Promise<void> {
    if (this.state === "open" && this.ready) return Promise.resolve();
    // While healing, wait (as publish does); only a closed or lost session fails at once.
    const closed = this.checkUsable();
    if (closed) return Promise.reject(closed);
    let waiter: (() => void) | undefined;
    const reopened = new Promise<void>((resolve) => {
      waiter = resolve;
      this.reopenWaiters.push(resolve);
    });
    const opts: CallOptions = { signal: call?.signal, timeout: call?.timeout ?? limit };
    return withCancel(reopened, opts, `${what} (waiting for the session to reconnect)`, () => {
      const i = this.reopenWaiters.indexOf(waiter as () => void);
      if (i >= 0) this.reopenWaiters.splice(i, 1);
    }).then(() => {
      const err = this.checkOpen();
      if (err) throw err;
    });
  }

  private shutdown(error: StanConnectionError): void {
    this.pings.stop();
    this.sweep.stop();
    const all = [...this.pending];
    this.pending.clear();
    for (const p of all) finish(p, error);
    this.window.wakeAll();
    this.wakeReopen();
    // Closing the connection ends iterations normally; losing it ends them with the error.
    const ending = error.code === ErrorCode.ConnectionClosed ? undefined : error;
    for (const sub of this.subs) sub.terminate(ending);
    this.subs.clear();
    this.teardownNats();
  }

  private teardownNats(): void {
    watchers.get(this.nc)?.delete(this);
    if (this.nc.isClosed()) return;
    try {
      this.hbSub?.unsubscribe();
      this.ackSub?.unsubscribe();
    } catch {
      // connection already gone
    }
  }

  // ---------------------------------------------------------------- publish

  /** Publishes are accepted while open and while healing (they are sent once healed). */
  private checkUsable(): StanConnectionError | undefined {
    return this.state === "reconnecting" ? undefined : this.checkOpen();
  }

  private checkOpen(): StanConnectionError | undefined {
    if (this.state === "open") return undefined;
    return (
      this.endError ??
      new StanConnectionError(ErrorCode.ConnectionClosed, Messages.connectionClosed)
    );
  }

  private pubSubject(subject: string): string {
    let full = this.pubSubjects.get(subject);
    if (full === undefined) {
      validateSubject(subject);
      full = `${this.subjects.pubPrefix}.${subject}`;
      if (this.pubSubjects.size >= 4096) this.pubSubjects.clear();
      this.pubSubjects.set(subject, full);
    }
    return full;
  }

  /**
   * Publishes and resolves with the guid once the server stored the message. Waits for room
   * when `maxPubAcksInflight` publishes are unacknowledged.
   */
  publish(subject: string, data: Uint8Array, call?: CallOptions): Promise<string> {
    if (this.window.hasRoom()) {
      try {
        return this.sendNow(subject, data, call, this.pending.nextGuid(), false);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return this.send(subject, data, call).then((s) => s.acked);
  }

  /**
   * Resolves as soon as the message is queued for NATS (after waiting for room in the window),
   * with its guid and the promise of its ack: the pipelined form for throughput. A burst of
   * pipelined publishes is written to the socket together at the end of the current turn of
   * the event loop (or at once when the outbox fills, and always before any later request).
   */
  send(subject: string, data: Uint8Array, call?: CallOptions): Promise<SentPublish> {
    if (this.window.hasRoom()) {
      // the common case, without an async function's extra promise and state
      try {
        return Promise.resolve(this.sent(subject, data, call));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return this.sendWhenRoom(subject, data, call);
  }

  private async sendWhenRoom(
    subject: string,
    data: Uint8Array,
    call?: CallOptions,
  ): Promise<SentPublish> {
    const closed = this.checkUsable();
    if (closed) throw closed;
    this.pubSubject(subject);
    if (call?.timeout !== undefined) validateTimeout(call.timeout, "publish");
    // Refuse what can never be sent before taking a place in the queue.
    this.checkSize(
      encodePubMsg(this.clientIdField, GUID_PROBE, subject, data, this.connIdField),
      data,
    );
    await this.window.wait(call);
    this.window.claim();
    try {
      return this.sent(subject, data, call);
    } catch (err) {
      // The woken waiter failed (aborted after its wake, or refused): pass the wake on, or
      // every later publish would queue behind it forever.
      this.window.wake();
      throw err;
    }
  }

  private checkSize(bytes: Uint8Array, data: Uint8Array): void {
    if (bytes.length > this.maxPayload) {
      throw new StanArgumentError(
        ErrorCode.MaxPayloadExceeded,
        `stan: payload too large: ${data.length} bytes of data make a ${bytes.length}-byte message, over the NATS server's max_payload of ${this.maxPayload}`,
      );
    }
  }

  private sent(subject: string, data: Uint8Array, call: CallOptions | undefined): SentPublish {
    // Whoever awaits `acked` observes a failure; one who ignores it must not get an
    // unhandled rejection, so finish() marks it handled before it rejects.
    const guid = this.pending.nextGuid();
    return { guid, acked: this.sendNow(subject, data, call, guid, true) };
  }

  private sendNow(
    subject: string,
    data: Uint8Array,
    call: CallOptions | undefined,
    guid: string,
    pipelined: boolean,
  ): Promise<string> {
    const closed = this.checkUsable();
    if (closed) throw closed;
    if (call?.signal?.aborted) throw abortError(call.signal, "publish");
    const full = this.pubSubject(subject);
    const bytes = encodePubMsg(this.clientIdField, guid, subject, data, this.connIdField);
    this.checkSize(bytes, data);
    const custom = call?.timeout !== undefined;
    const timeout = custom ? validateTimeout(call?.timeout, "publish") : this.opts.pubAckTimeout;
    const deadline = Date.now() + timeout;
    const promise = new Promise<string>(captureResolvers);
    const entry: PendingPub = {
      guid,
      subject,
      data,
      resolve: capturedResolve,
      reject: capturedReject,
      deadline,
      // a pipelined publish's caller may ignore its promise: see finish()
      acked: pipelined ? promise : undefined,
      batch: undefined,
      index: 0,
      seq: 0,
    };
    this.track(entry, full, bytes, timeout, custom);
    const signal = call?.signal;
    if (signal) {
      const onAbort = () => this.settle(guid, abortError(signal, "publish"));
      signal.addEventListener("abort", onAbort, { once: true });
      promise.then(
        () => signal.removeEventListener("abort", onAbort),
        () => signal.removeEventListener("abort", onAbort),
      );
    }
    return promise;
  }

  /** Registers a publish as pending and sends it (or leaves it for the heal to send). */
  private track(
    entry: PendingPub,
    full: string,
    bytes: Uint8Array,
    timeout: number,
    custom: boolean,
  ): void {
    this.pending.add(entry);
    if (custom) this.sweep.customDeadlines++;
    this.sweep.start(timeout);
    // While healing, it waits in `pending` and is sent once the session is back. A publish
    // alone goes out at once (lowest latency); one among others in flight joins the outbox.
    if (this.state === "open") {
      if (this.outbox.size === 0 && this.pending.size === 1) {
        try {
          this.nc.publish(full, bytes, this.pubOpts);
        } catch (err) {
          // The NATS connection refused it (closing, or closed under a borrowed connection):
          // nothing was sent, so take the entry back rather than leave it to reject unheard.
          this.pending.remove(entry);
          if (custom) this.sweep.customDeadlines--;
          throw new StanConnectionError(
            ErrorCode.ConnectionClosed,
            `stan: publish failed, the NATS connection refused it: ${(err as Error).message}`,
            { cause: err },
          );
        }
      } else this.outbox.enqueue(full, bytes, this.pubOpts, entry.guid);
    }
  }

  /**
   * Publishes every message of `datas` to one channel, within the same `maxPubAcksInflight`
   * window as single publishes, and resolves once each one is stored or has failed: one
   * promise for the whole batch instead of one per message. Every message is checked against
   * max_payload before any is sent. A failure (ack timeout, server error, connection closed,
   * the call aborted) is reported per message in {@link BatchOutcome.failures}; messages the
   * batch never got to send fail with the error that stopped it.
   */
  async sendBatch(
    subject: string,
    datas: readonly Uint8Array[],
    call?: CallOptions,
  ): Promise<BatchOutcome> {
    const closed = this.checkUsable();
    if (closed) throw closed;
    if (call?.signal?.aborted) throw abortError(call.signal, "publish");
    const full = this.pubSubject(subject);
    const n = datas.length;
    if (n === 0) return { guids: [], failures: [] };
    // The encoding around the data is the same for every message: learn it once.
    const probe = encodePubMsg(this.clientIdField, nuid.next(), subject, EMPTY, this.connIdField);
    for (let i = 0; i < n; i++) {
      const len = (datas[i] as Uint8Array).length;
      const size = probe.length + (len > 0 ? 1 + varintSize(len) + len : 0);
      if (size > this.maxPayload) {
        throw new StanArgumentError(
          ErrorCode.MaxPayloadExceeded,
          `stan: payload too large: message ${i} of the batch has ${len} bytes of data, making a ${size}-byte message, over the NATS server's max_payload of ${this.maxPayload}; nothing was sent`,
        );
      }
    }
    const batch = new PublishBatch(n);
    const custom = call?.timeout !== undefined;
    const timeout = custom ? validateTimeout(call?.timeout, "publish") : this.opts.pubAckTimeout;
    let sent = 0;
    const signal = call?.signal;
    const onAbort = () => {
      const error = abortError(signal as AbortSignal, "publish");
      for (let i = 0; i < sent; i++) this.settle(batch.guids[i] as string, error);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      while (sent < n) {
        if (!this.window.hasRoom()) {
          await this.window.wait(call);
          this.window.claim();
        }
        // As many as the window allows, in this turn.
        const deadline = Date.now() + timeout;
        do {
          const guid = this.pending.nextGuid();
          const data = datas[sent] as Uint8Array;
          batch.guids[sent] = guid;
          const entry: PendingPub = {
            guid,
            subject,
            data,
            resolve: undefined,
            reject: undefined,
            deadline,
            acked: undefined,
            batch,
            index: sent,
            seq: 0,
          };
          const bytes = encodePubMsg(this.clientIdField, guid, subject, data, this.connIdField);
          this.track(entry, full, bytes, timeout, custom);
          sent++;
        } while (sent < n && this.window.hasRoom());
      }
    } catch (err) {
      for (let i = sent; i < n; i++) batch.settled(i, err as Error); // never sent
      this.window.wake(); // a slot this batch was woken for must not stay unclaimed
    }
    const outcome = await batch.done;
    signal?.removeEventListener("abort", onAbort);
    return outcome;
  }

  /** Hands the outbox to NATS first, so a request never overtakes queued publishes or acks. */
  private flushThen<T>(fn: () => T): T {
    this.outbox.flush();
    return fn();
  }

  private onPubAck(msg: NatsMsgLike): void {
    // nats-server's "no responders" for a publish that reached no streaming server (it is down):
    // not an ack of anything; that publish settles by its ack timeout or is re-sent by a heal.
    if (isStatusMessage(msg)) return;
    const data = msg.data;
    if (data.length === 2 + GUID_LEN && data[0] === 0x0a && data[1] === GUID_LEN) {
      // The usual PubAck: the guid alone (field 1, 22 bytes). Found from the bytes, no string.
      const p = this.pending.findBytes(data, 2);
      if (p) this.settleEntry(p, undefined);
      return;
    }
    let guid: string;
    let error: string;
    try {
      [guid, error] = decodePubAck(msg.data);
    } catch (err) {
      this.reportProtocolError(err);
      return;
    }
    if (!guid) {
      // the server echoes the guid of every publish: a PubAck without one answers nothing
      this.reportProtocolError(
        new StanProtocolError(ErrorCode.ProtocolError, "stan: malformed PubAck: no guid"),
      );
      return;
    }
    this.settle(guid, error ? new StanServerError(ErrorCode.ServerError, error) : undefined);
  }

  private settle(guid: string, error?: Error): void {
    const p = this.pending.find(guid);
    if (p) this.settleEntry(p, error);
  }

  private settleEntry(p: PendingPub, error: Error | undefined): void {
    this.pending.remove(p);
    finish(p, error);
    if (this.window.waiting) this.window.wake();
    if (this.pending.size === 0) this.sweep.stop();
  }

  // ---------------------------------------------------------------- subscribe

  /** Creates a subscription on the server; messages go to `sink`. */
  async subscribe(
    params: SubscribeParams,
    sink: SubscriptionSink,
    call?: CallOptions,
  ): Promise<CoreSubscription> {
    const sub = new CoreSubscription(this, params, sink);
    // The call's timeout bounds the whole call, a second request after a heal included.
    const deadline = call?.timeout === undefined ? undefined : Date.now() + call.timeout;
    let step = call;
    for (;;) {
      await this.waitOpen(step, "subscribe", this.opts.pubAckTimeout);
      const epoch = this.epoch;
      try {
        await this.requestSubscription(sub, params, step);
        break;
      } catch (err) {
        // The session was lost while the request was in flight: whatever the server made of
        // it went with the old session. Ask again once healed, as a call made during the
        // heal would, unless the call's own signal or timeout ended it.
        const usable = this.state === "reconnecting" || this.state === "open";
        const own = hasErrorCode(err, ErrorCode.Timeout) || hasErrorCode(err, ErrorCode.Aborted);
        if (this.epoch !== epoch && usable && !own && !call?.signal?.aborted) {
          if (deadline !== undefined) {
            step = { signal: call?.signal, timeout: Math.max(0, deadline - Date.now()) };
          }
          continue;
        }
        throw err;
      }
    }
    this.subs.add(sub);
    return sub;
  }

  /** @internal Sends a SubscriptionRequest for `sub` on a fresh delivery inbox. */
  async requestSubscription(
    sub: CoreSubscription,
    params: SubscribeParams,
    call?: CallOptions,
  ): Promise<void> {
    const epoch = this.epoch;
    const inbox = createInbox();
    const natsSub = this.nc.subscribe(inbox, {
      callback: (_err, msg) => sub.onMessage(msg, natsSub),
    });
    // Deliveries can be dispatched before this function resumes after the reply: take them.
    sub.attach(natsSub, inbox, sub.ackInbox);
    const req = encode(SubscriptionRequestSchema, {
      clientID: this.clientId,
      subject: params.subject,
      qGroup: params.queue ?? "",
      inbox,
      maxInFlight: params.maxInflight,
      ackWaitInSecs: params.ackWaitSecs,
      durableName: params.durableName ?? "",
      startPosition: params.startPosition,
      startSequence: params.startSequence ?? 0n,
      startTimeDelta: params.startTimeDelta ?? 0n,
    });
    let reply: NatsMsgLike;
    try {
      reply = await withCancel(
        this.flushThen(() =>
          this.nc.request(this.subjects.subRequests, req, { timeout: this.opts.connectTimeout }),
        ),
        call,
        "subscribe",
      );
    } catch (err) {
      natsSub.unsubscribe();
      if (this.subjects.subCloseRequests && this.state === "open") {
        // Best effort, as the official clients do: the server may have created it anyway.
        const bye = encode(UnsubscribeRequestSchema, {
          clientID: this.clientId,
          subject: params.subject,
          inbox,
          durableName: params.durableName ?? "",
        });
        this.nc.publish(this.subjects.subCloseRequests, bye);
      }
      throw this.checkOpen() ?? mapRequestError(err, Messages.subscribeTimeout);
    }
    let resp: { ackInbox: string; error: string };
    try {
      resp = decodeOrProtocolError(SubscriptionResponseSchema, reply.data, "SubscriptionResponse");
    } catch (err) {
      natsSub.unsubscribe();
      throw err;
    }
    if (resp.error) {
      natsSub.unsubscribe();
      throw new StanServerError(ErrorCode.ServerError, resp.error);
    }
    const lost =
      this.checkOpen() ??
      (this.epoch === epoch
        ? undefined
        : new StanConnectionError(
            ErrorCode.ConnectionLost,
            "stan: the session was lost while subscribing (its registration went with it)",
          ));
    if (lost) {
      natsSub.unsubscribe();
      throw lost;
    }
    sub.ackInbox = resp.ackInbox;
    sub.stale = false;
    sub.resumed(this.opts.connectTimeout);
    // acks asked for while it was being re-created go to its new ack inbox now
    for (const seq of sub.takeQueuedAcks()) {
      this.outbox.enqueue(sub.ackInbox, encodeAck(params.subject, seq), undefined, "");
    }
  }

  /**
   * @internal Acknowledges `sequence`. While a heal re-creates the subscription (its old ack
   * inbox died with the old session, the new one is not known yet), a durable's ack is kept
   * and sent to the new ack inbox once it is known: the server keeps a durable's unacked
   * messages across sessions and accepts the ack there (the redelivered copy it may already
   * have sent is then dropped, see {@link CoreSubscription}). A non-durable's is dropped: its
   * old registration, and with it what was unacked, is gone, so nothing will be redelivered.
   */
  sendAck(sub: CoreSubscription, sequence: bigint, internal = false): void {
    if (this.state === "reconnecting" || sub.stale || sub.resubscribing) {
      sub.queueAck(sequence, internal);
      return;
    }
    const closed = this.checkOpen();
    if (closed) throw closed;
    this.outbox.enqueue(sub.ackInbox, encodeAck(sub.params.subject, sequence), undefined, "");
  }

  /** @internal */
  async endSubscription(
    sub: CoreSubscription,
    unsubscribe: boolean,
    call?: CallOptions,
  ): Promise<void> {
    const notMadeYet = this.state === "open" && !this.ready && sub.stale && !sub.resubscribing;
    if (!unsubscribe && (this.state === "reconnecting" || notMadeYet)) {
      // The heal has not re-created it and now will not (resubscribe() skips it); the server
      // took the old registration offline with the old session.
      this.subs.delete(sub);
      sub.detach();
      return;
    }
    const what = unsubscribe ? "unsubscribe" : "subscription close";
    try {
      await this.waitOpen(call, what, this.opts.pubAckTimeout);
      if (sub.resubscribing) {
        // Being re-created (a heal, or a restart from the first message): its ack inbox is
        // about to change. Wait for the new one, then decide again.
        await withCancel(sub.resubscribing, call, what);
        return this.endSubscription(sub, unsubscribe, call);
      }
    } catch (err) {
      // Given up before anything was sent: no heal may re-create what the caller asked to end
      // (a durable that was to be deleted keeps its state on the server: the error says so).
      this.subs.delete(sub);
      sub.detach();
      if (unsubscribe && this.state !== "closed" && this.state !== "lost") {
        throw notDeleted(err, sub);
      }
      throw err;
    }
    if (!this.subs.has(sub)) {
      // the heal could not re-create it: the server has no such subscription to end
      sub.detach();
      return;
    }
    const subject = unsubscribe ? this.subjects.unsubRequests : this.subjects.subCloseRequests;
    if (!subject) {
      throw new StanServerError(ErrorCode.NotSupported, Messages.notSupported);
    }
    sub.detach();
    this.subs.delete(sub);
    const req = encode(UnsubscribeRequestSchema, {
      clientID: this.clientId,
      subject: sub.params.subject,
      inbox: sub.ackInbox,
      durableName: sub.params.durableName ?? "",
    });
    let reply: NatsMsgLike;
    try {
      reply = await withCancel(
        this.flushThen(() => this.nc.request(subject, req, { timeout: this.opts.connectTimeout })),
        call,
        unsubscribe ? "unsubscribe" : "subscription close",
      );
    } catch (err) {
      throw (
        this.checkOpen() ??
        mapRequestError(err, unsubscribe ? Messages.unsubscribeTimeout : Messages.closeTimeout)
      );
    }
    const resp = decodeOrProtocolError(
      SubscriptionResponseSchema,
      reply.data,
      "SubscriptionResponse",
    );
    if (resp.error) {
      if (resp.error === Messages.invalidSubscription) {
        throw new StanSubscriptionError(ErrorCode.InvalidSubscription, resp.error);
      }
      throw new StanServerError(ErrorCode.ServerError, resp.error);
    }
  }

  // ---------------------------------------------------------------- close

  /**
   * Closes the session: the server removes non-durable subscriptions and keeps durables.
   * Pending publishes reject with `stan: connection closed`. Idempotent; after a lost
   * connection it only releases local resources.
   */
  close(call?: CallOptions): Promise<void> {
    if (!this.closePromise) this.closePromise = this.doClose(call);
    return this.closePromise;
  }

  private async doClose(call?: CallOptions): Promise<void> {
    const error = new StanConnectionError(ErrorCode.ConnectionClosed, Messages.connectionClosed);
    if (this.state !== "open") {
      // lost, or healing (the server no longer knows this session): local release only
      if (this.state === "reconnecting") {
        this.state = "closed";
        this.endError = error;
        this.shutdown(error);
      }
      this.state = "closed";
      this.emit({ type: "closed" });
      return;
    }
    this.outbox.flush(); // what was published and acked goes before the close request
    this.state = "closing";
    this.endError = error;
    let failure: unknown;
    try {
      const req = encode(CloseRequestSchema, { clientID: this.clientId });
      const reply = await withCancel(
        this.nc.request(this.subjects.closeRequests, req, { timeout: this.opts.connectTimeout }),
        call,
        "close",
      );
      const resp = decodeOrProtocolError(CloseResponseSchema, reply.data, "CloseResponse");
      if (resp.error) failure = new StanServerError(ErrorCode.ServerError, resp.error);
    } catch (err) {
      failure = isStanError(err) ? err : mapRequestError(err, Messages.closeTimeout);
    }
    this.state = "closed";
    this.shutdown(error);
    this.emit({ type: "closed" });
    if (failure) throw failure;
  }
}
