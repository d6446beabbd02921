/**
 * What every part of a session shares: its NATS connection and options, the server's subjects
 * from the ConnectResponse, the session's state (open, healing, closed...), its events, the
 * outbox, and the waiters for a session that heals. The parts (handshake.ts, publishing.ts,
 * subscribing.ts, heal.ts) each hold this object; session.ts wires them together.
 */

import { type CallOptions, withCancel } from "../cancel.js";
import { encodeConstField } from "../codec.js";
import {
  ErrorCode,
  isStanError,
  Messages,
  StanConnectionError,
  StanProtocolError,
} from "../errors.js";
import { FrameWriter } from "../frames.js";
import { nuid } from "../nuid.js";
import type { NatsConnectionLike } from "../transport.js";
import { Outbox } from "./outbox.js";
import type { ServerSubjects, SessionEvent, SessionOptions } from "./types.js";

/** Where a session is in its life; `reconnecting` while a lost session heals itself. */
export type SessionPhase = "connecting" | "open" | "reconnecting" | "closing" | "closed" | "lost";

/** @internal The state one session's parts share (see the file's comment). */
export class SessionState {
  readonly clientId: string;
  readonly clusterId: string;
  readonly opts: SessionOptions;
  readonly nc: NatsConnectionLike;
  /** Per-session unique id (NUID bytes) sent with publishes and pings; new after a heal. */
  connId: Uint8Array;
  readonly clientIdField: Uint8Array;
  connIdField: Uint8Array;
  /** The subjects of the ConnectResponse; set by each handshake. */
  subjects!: ServerSubjects;
  state: SessionPhase = "connecting";
  /**
   * Open and restored: false from the loss of a session until the heal has re-created every
   * subscription, so that subscription calls wait for that (their ack inboxes change).
   */
  ready = false;
  /** Counts lost sessions: a reply to a request of an earlier session is of no use now. */
  epoch = 0;
  endError: StanConnectionError | undefined;
  malformed = 0;
  readonly listeners = new Set<(e: SessionEvent) => void>();
  reopenWaiters: Array<() => void> = [];
  /** Publishes and acks waiting to be handed to NATS together. */
  readonly outbox: Outbox;

  /** `publishFailed` settles a publish the outbox could not hand to NATS. */
  constructor(
    nc: NatsConnectionLike,
    opts: SessionOptions,
    publishFailed: (guid: string, err: unknown) => void,
  ) {
    this.nc = nc;
    this.opts = opts;
    this.clientId = opts.clientId;
    this.clusterId = opts.clusterId;
    this.connId = new TextEncoder().encode(nuid.next());
    this.clientIdField = encodeConstField(1, opts.clientId);
    this.connIdField = encodeConstField(6, this.connId);
    const frames = opts.framedWrites === false ? undefined : FrameWriter.for(nc);
    this.outbox = new Outbox(nc, frames, () => this.state === "open", publishFailed);
  }

  /** A new connId for the next session (a heal registers anew). */
  renewConnId(): void {
    this.connId = new TextEncoder().encode(nuid.next());
    this.connIdField = encodeConstField(6, this.connId);
  }

  /**
   * The NATS server's max_payload, read at each use: after NATS reconnects to another server
   * its limit may differ, and a frame over it would make that server close the connection.
   */
  get maxPayload(): number {
    return this.nc.info?.max_payload ?? 1024 * 1024;
  }

  emit(e: SessionEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch {
        // a listener's failure is its own
      }
    }
  }

  /** Counts and reports a malformed message. */
  reportProtocolError(err: unknown): void {
    this.malformed++;
    const error = isStanError(err)
      ? err
      : new StanProtocolError(ErrorCode.ProtocolError, "stan: malformed message from the network", {
          cause: err,
        });
    this.emit({ type: "protocol-error", error });
  }

  /** Publishes are accepted while open and while healing (they are sent once healed). */
  checkUsable(): StanConnectionError | undefined {
    return this.state === "reconnecting" ? undefined : this.checkOpen();
  }

  checkOpen(): StanConnectionError | undefined {
    if (this.state === "open") return undefined;
    return (
      this.endError ??
      new StanConnectionError(ErrorCode.ConnectionClosed, Messages.connectionClosed)
    );
  }

  /** Hands the outbox to NATS first, so a request never overtakes queued publishes or acks. */
  flushThen<T>(fn: () => T): T {
    this.outbox.flush();
    return fn();
  }

  /** Waits until the session is open and restored (bounded by the call's options or `limit` ms). */
  waitOpen(call: CallOptions | undefined, what: string, limit: number): Promise<void> {
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

  wakeReopen(): void {
    for (const w of this.reopenWaiters.splice(0)) w();
  }
}
