/**
 * The `Session` class: one NATS Streaming session over one NATS connection, as a façade over
 * its parts, each a file of its own:
 *
 * - state.ts: what the parts share (connection, options, server subjects, state, events);
 * - handshake.ts: the ConnectRequest/Response, the heartbeat and PubAck inboxes;
 * - publishing.ts: publish, send, sendBatch over the window; PubAcks; pending publishes;
 * - subscribing.ts: subscription requests, acks, close and unsubscribe; the registry;
 * - heal.ts: loss and heal (re-register, re-send, re-subscribe);
 * - pings.ts, outbox.ts, ack-sweep.ts, publish-window.ts, publish-batch.ts, subscription.ts,
 *   replies.ts, nats-watch.ts: their collaborators.
 *
 * This file wires them together and holds the session's end: `fail()` and `close()`.
 */

import { CloseRequestSchema, CloseResponseSchema, encode } from "@stan-ts/proto";
import { type CallOptions, withCancel } from "../cancel.js";
import {
  ErrorCode,
  isStanError,
  Messages,
  StanConnectionError,
  StanServerError,
} from "../errors.js";
import type { NatsConnectionLike } from "../transport.js";
import { Handshake } from "./handshake.js";
import { Healer } from "./heal.js";
import { Pinger } from "./pings.js";
import { Publisher } from "./publishing.js";
import { decodeOrProtocolError, mapRequestError } from "./replies.js";
import { SessionState } from "./state.js";
import { Subscriptions } from "./subscribing.js";
import type { CoreSubscription } from "./subscription.js";
import type {
  BatchOutcome,
  SentPublish,
  SessionEvent,
  SessionOptions,
  SubscribeParams,
  SubscriptionSink,
} from "./types.js";

/**
 * One NATS Streaming session over a NATS connection: the connect handshake, heartbeats,
 * pings, the publish window and ack timeouts, subscriptions and acks, close.
 *
 * This is the engine behind `stan-ts`; application code uses the `stan-ts` package.
 */
export class Session {
  readonly clientId: string;
  readonly clusterId: string;
  private readonly s: SessionState;
  private readonly publisher: Publisher;
  private readonly pings: Pinger;
  private readonly handshake: Handshake;
  private readonly subscriptions: Subscriptions;
  private readonly healer: Healer;
  private closePromise: Promise<void> | undefined;

  private constructor(nc: NatsConnectionLike, opts: SessionOptions) {
    this.clientId = opts.clientId;
    this.clusterId = opts.clusterId;
    const s = new SessionState(nc, opts, (guid, err) =>
      this.publisher.settle(
        guid,
        new StanConnectionError(ErrorCode.ConnectionLost, `stan: publish failed: ${String(err)}`, {
          cause: err,
        }),
      ),
    );
    this.s = s;
    this.publisher = new Publisher(s);
    this.pings = new Pinger(opts.pingInterval, opts.pingMaxOut, {
      request: (bytes, timeout) => nc.request(s.subjects.pingRequests, bytes, { timeout }),
      isOpen: () => s.state === "open",
      protocolError: (err) => s.reportProtocolError(err),
      missed: (missed, maxOut) => s.emit({ type: "ping-missed", missed, maxOut }),
      lost: (reason) => this.lose(reason),
    });
    this.handshake = new Handshake(s, this, this.publisher, this.pings);
    this.subscriptions = new Subscriptions(s, this);
    this.healer = new Healer(
      s,
      this,
      this.handshake,
      this.publisher,
      this.subscriptions,
      this.pings,
    );
  }

  /** Opens a session: registers with the streaming server and starts pings. */
  static async open(
    nc: NatsConnectionLike,
    opts: SessionOptions,
    call?: CallOptions,
  ): Promise<Session> {
    const s = new Session(nc, opts);
    await s.handshake.run(call);
    return s;
  }

  /** Per-session unique id (NUID bytes) sent with publishes and pings; new after a heal. */
  get connId(): Uint8Array {
    return this.s.connId;
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
    return this.s.state === "open" || this.s.state === "reconnecting";
  }

  /** True while a lost session heals itself (until its subscriptions are re-created). */
  get isReconnecting(): boolean {
    return this.s.state === "reconnecting" || (this.s.state === "open" && !this.s.ready);
  }

  /** Why the session ended, if it did. */
  get error(): StanConnectionError | undefined {
    return this.s.endError;
  }

  /** Number of publishes awaiting their PubAck. */
  get pendingPublishes(): number {
    return this.publisher.pending.size;
  }

  /** Malformed messages received from the network (dropped, never delivered). */
  get protocolErrors(): number {
    return this.s.malformed;
  }

  /** @internal Counts and reports a malformed message. */
  reportProtocolError(err: unknown): void {
    this.s.reportProtocolError(err);
  }

  /** Registers a listener for session events; returns a function that removes it. */
  onEvent(listener: (e: SessionEvent) => void): () => void {
    this.s.listeners.add(listener);
    return () => this.s.listeners.delete(listener);
  }

  // ---------------------------------------------------------------- loss and heal (heal.ts)

  /**
   * The session was lost (pings, replaced client). With self-healing on, it registers again
   * and pending work waits; otherwise it ends as {@link Session.fail} does.
   */
  lose(reason: string, cause?: unknown): void {
    this.healer.lose(reason, cause);
  }

  /**
   * Ends the session for good: pending publishes, requests and subscriptions end with a
   * {@link StanConnectionError}. Reported once.
   */
  fail(reason: string, cause?: unknown): void {
    if (this.s.state === "closing" || this.s.state === "closed" || this.s.state === "lost") return;
    this.s.state = "lost";
    this.s.outbox.flush(); // not open: drops the outbox
    const error = new StanConnectionError(ErrorCode.ConnectionLost, reason, { cause });
    this.s.endError = error;
    this.shutdown(error);
    this.s.emit({ type: "connection-lost", error });
  }

  /**
   * @internal A healed non-durable found that the server numbers its channel anew (a memory
   * store restarted): re-create it from the first message. Its delivery inbox is dropped now;
   * a heal that comes meanwhile re-creates it the same way.
   */
  restartSubscription(sub: CoreSubscription): Promise<void> {
    return this.healer.restartSubscription(sub);
  }

  private shutdown(error: StanConnectionError): void {
    this.pings.stop();
    this.publisher.failAll(error);
    this.s.wakeReopen();
    // Closing the connection ends iterations normally; losing it ends them with the error.
    const ending = error.code === ErrorCode.ConnectionClosed ? undefined : error;
    this.subscriptions.terminateAll(ending);
    this.handshake.teardown();
  }

  // ---------------------------------------------------------------- publish (publishing.ts)

  /**
   * Publishes and resolves with the guid once the server stored the message. Waits for room
   * when `maxPubAcksInflight` publishes are unacknowledged.
   */
  publish(subject: string, data: Uint8Array, call?: CallOptions): Promise<string> {
    return this.publisher.publish(subject, data, call);
  }

  /**
   * Resolves as soon as the message is queued for NATS (after waiting for room in the window),
   * with its guid and the promise of its ack: the pipelined form for throughput. A burst of
   * pipelined publishes is written to the socket together at the end of the current turn of
   * the event loop (or at once when the outbox fills, and always before any later request).
   */
  send(subject: string, data: Uint8Array, call?: CallOptions): Promise<SentPublish> {
    return this.publisher.send(subject, data, call);
  }

  /**
   * Publishes every message of `datas` to one channel, within the same `maxPubAcksInflight`
   * window as single publishes, and resolves once each one is stored or has failed: one
   * promise for the whole batch instead of one per message. Every message is checked against
   * max_payload before any is sent. A failure (ack timeout, server error, connection closed,
   * the call aborted) is reported per message in {@link BatchOutcome.failures}; messages the
   * batch never got to send fail with the error that stopped it.
   */
  sendBatch(
    subject: string,
    datas: readonly Uint8Array[],
    call?: CallOptions,
  ): Promise<BatchOutcome> {
    return this.publisher.sendBatch(subject, datas, call);
  }

  // ---------------------------------------------------------------- subscribe (subscribing.ts)

  /** Creates a subscription on the server; messages go to `sink`. */
  subscribe(
    params: SubscribeParams,
    sink: SubscriptionSink,
    call?: CallOptions,
  ): Promise<CoreSubscription> {
    return this.subscriptions.subscribe(params, sink, call);
  }

  /** @internal Sends a SubscriptionRequest for `sub` on a fresh delivery inbox. */
  requestSubscription(
    sub: CoreSubscription,
    params: SubscribeParams,
    call?: CallOptions,
  ): Promise<void> {
    return this.subscriptions.requestSubscription(sub, params, call);
  }

  /**
   * @internal Acknowledges `sequence`. While a heal re-creates the subscription (its old ack
   * inbox died with the old session, the new one is not known yet), a durable's ack is kept
   * and sent to the new ack inbox once it is known: the server keeps a durable's unacked
   * messages across sessions and accepts the ack there (the redelivered copy it may already
   * have sent is then dropped, see {@link CoreSubscription}). A non-durable's is dropped: its
   * old registration, and with it what was unacked, is gone, so nothing will be redelivered.
   * (subscribing.ts does it.)
   */
  sendAck(sub: CoreSubscription, sequence: bigint, internal = false): void {
    this.subscriptions.sendAck(sub, sequence, internal);
  }

  /** @internal Closes (`unsubscribe` false) or unsubscribes `sub` on the server. */
  endSubscription(sub: CoreSubscription, unsubscribe: boolean, call?: CallOptions): Promise<void> {
    return this.subscriptions.endSubscription(sub, unsubscribe, call);
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
    if (this.s.state !== "open") {
      // lost, or healing (the server no longer knows this session): local release only
      if (this.s.state === "reconnecting") {
        this.s.state = "closed";
        this.s.endError = error;
        this.shutdown(error);
      }
      this.s.state = "closed";
      this.s.emit({ type: "closed" });
      return;
    }
    this.s.outbox.flush(); // what was published and acked goes before the close request
    this.s.state = "closing";
    this.s.endError = error;
    let failure: unknown;
    try {
      const req = encode(CloseRequestSchema, { clientID: this.s.clientId });
      const reply = await withCancel(
        this.s.nc.request(this.s.subjects.closeRequests, req, {
          timeout: this.s.opts.connectTimeout,
        }),
        call,
        "close",
      );
      const resp = decodeOrProtocolError(CloseResponseSchema, reply.data, "CloseResponse");
      if (resp.error) failure = new StanServerError(ErrorCode.ServerError, resp.error);
    } catch (err) {
      failure = isStanError(err) ? err : mapRequestError(err, Messages.closeTimeout);
    }
    this.s.state = "closed";
    this.shutdown(error);
    this.s.emit({ type: "closed" });
    if (failure) throw failure;
  }
}
