/** The session's public types: options, events, subscription parameters, publish outcomes. */

import type { StartPosition } from "@stan-ts/proto";
import type { DecodedMsg } from "../codec.js";
import type { StanConnectionError, StanError } from "../errors.js";
import type { Session } from "./session.js";
/** Settings of a {@link Session}; the client fills in the defaults. */
export interface SessionOptions {
  clusterId: string;
  clientId: string;
  /** ms to wait for the connect, subscribe, unsubscribe and close replies. */
  connectTimeout: number;
  /** ms to wait for a PubAck. */
  pubAckTimeout: number;
  /** Most publishes awaiting their PubAck at once. */
  maxPubAcksInflight: number;
  /** ms between client pings (sent to the server as whole seconds, at least 1). */
  pingInterval: number;
  /** Consecutive unanswered pings after which the connection is lost. */
  pingMaxOut: number;
  discoverPrefix: string;
  /**
   * Self-healing: after a lost session, register again with the same clientID, re-create the
   * subscriptions and re-send unacknowledged publishes. `false` ends the session instead.
   */
  reconnect?: ReconnectOptions | false | undefined;
  /**
   * Write batched publishes and acks as pre-framed PUB commands when the connection is a
   * nats.js one (default); `false` always goes through `nc.publish()`.
   */
  framedWrites?: boolean | undefined;
}

/** How a lost session heals itself. */
export interface ReconnectOptions {
  /** Attempts before giving up (-1: forever). @default -1 */
  maxAttempts?: number | undefined;
  /** ms before the first attempt; doubles up to `maxDelay`, with jitter. @default 250 */
  initialDelay?: number | undefined;
  /** @default 5000 */
  maxDelay?: number | undefined;
}

/** What the session reports through {@link Session.onEvent}. */
export type SessionEvent =
  | { type: "connected"; clientId: string }
  | { type: "ping-missed"; missed: number; maxOut: number }
  /** The session was lost and is healing itself; pending work waits. */
  | { type: "disconnected"; error: StanConnectionError }
  | { type: "reconnecting"; attempt: number; delay: number; lastError?: StanError | undefined }
  | { type: "reconnected"; attempts: number }
  | {
      type: "resubscribed";
      subject: string;
      durableName?: string | undefined;
      queue?: string | undefined;
    }
  | { type: "resubscribe-failed"; subject: string; error: StanError }
  | { type: "republished"; count: number }
  /** Final: the session is over and every pending call was rejected with `error`. */
  | { type: "connection-lost"; error: StanConnectionError }
  | { type: "protocol-error"; error: StanError }
  | { type: "closed" };

/** Parameters of a subscription request. */
export interface SubscribeParams {
  subject: string;
  queue?: string | undefined;
  durableName?: string | undefined;
  maxInflight: number;
  ackWaitSecs: number;
  startPosition: StartPosition;
  startSequence?: bigint | undefined;
  /** ns before the server's now (TimeDeltaStart). */
  startTimeDelta?: bigint | undefined;
}

/** Receives a subscription's messages from the session. */
export interface SubscriptionSink {
  /** A message for the subscription, in the order the server sent it. */
  deliver(msg: DecodedMsg): void;
  /** The subscription ended: by close/unsubscribe (no error) or by connection loss. */
  end(error?: StanError): void;
  /**
   * Takes back the messages received and not yet handed to the consumer, oldest first, and
   * forgets them. A healed non-durable asks the server to send them again, so that its buffer
   * never holds more than `maxInflight` (the new server subscription sends a fresh window).
   * Without it they stay buffered.
   */
  rewind?(): DecodedMsg[];
}

/** The outcome of {@link Session.sendBatch}: one guid per message, and those not stored. */
export interface BatchOutcome {
  /** The guid each message was published with, in input order ("" for one never sent). */
  readonly guids: readonly string[];
  /** The messages that were not stored, by input index, in index order; empty when all were. */
  readonly failures: ReadonlyArray<{ readonly index: number; readonly error: StanError }>;
}

/** A publish that was sent: its guid and the promise of its PubAck. */
export interface SentPublish {
  readonly guid: string;
  /** Resolves with the guid once stored; rejects with a typed error. Never hangs. */
  readonly acked: Promise<string>;
}

export interface ServerSubjects {
  pubPrefix: string;
  subRequests: string;
  unsubRequests: string;
  subCloseRequests: string;
  closeRequests: string;
  pingRequests: string;
}
