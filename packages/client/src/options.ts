import {
  type CallOptions,
  invalidArgument,
  type NatsConnectionLike,
  type ReconnectOptions,
  type SessionOptions,
  type StanConnectionError,
  type SubscribeParams,
  validateClientId,
  validateClusterId,
  validateInt,
  validateName,
  validateSubject,
} from "@stan-ts/core";
import { StartPosition } from "@stan-ts/proto";
import type { ConnectionOptions } from "nats";
import type { StanConnection } from "./connection.js";
import type { Message } from "./message.js";

/**
 * What serves a {@link ConnectOptions} connection other than NATS Streaming: given the options,
 * it returns the same {@link StanConnection} (for example `jetstream()` of `@stan-ts/jetstream`).
 */
export interface Backend {
  /** Opens a connection as `connect(options)` would; `connect()` hands the call over. */
  connect(options: ConnectOptions): Promise<StanConnection>;
}

const INT32_MAX = 2 ** 31 - 1;

/** Options of {@link connect}. Only `clusterId` and `clientId` are required. */
export interface ConnectOptions extends CallOptions {
  /** The streaming server's cluster ID (its `-cid`). */
  clusterId: string;
  /** This client's ID: letters, digits, `-` and `_`. One live connection per ID. */
  clientId: string;
  /**
   * A NATS connection to borrow (`nats` 2.x or `@nats-io/transport-node` 3.x). The SDK never
   * closes it. Without it, the SDK opens its own, which reconnects forever.
   */
  nc?: NatsConnectionLike | undefined;
  /** NATS server URL(s) for the connection the SDK opens. @default "nats://127.0.0.1:4222" */
  servers?: string | string[] | undefined;
  /** Further options for the connection the SDK opens (see the `nats` package). */
  natsOptions?: Partial<ConnectionOptions> | undefined;
  /** ms to wait for the connect, subscribe, unsubscribe and close replies. @default 2000 */
  connectTimeout?: number | undefined;
  /** ms to wait for a publish's ack. @default 30000 */
  pubAckTimeout?: number | undefined;
  /** Most publishes awaiting their ack; further publishes wait for room. @default 16384 */
  maxPubAcksInflight?: number | undefined;
  /** ms between pings to the server (sent as whole seconds, at least 1). @default 5000 */
  pingInterval?: number | undefined;
  /** Unanswered pings in a row after which the connection is lost. @default 3 */
  pingMaxOut?: number | undefined;
  /** Subject prefix of the server's discovery subject. @default "_STAN.discover" */
  discoverPrefix?: string | undefined;
  /**
   * Self-healing (on by default): when the session is lost (pings unanswered, server restarted
   * and forgot the client, NATS connection replaced), register again with the same clientID,
   * re-create every open subscription (a durable resumes at its stored position, a
   * non-durable after the last sequence it received) and re-send unacknowledged publishes
   * with their guid. `false` ends the connection instead. Progress is on `sc.status()`.
   * @default { maxAttempts: -1, initialDelay: 250, maxDelay: 5000 }
   */
  reconnect?: ReconnectOptions | false | undefined;
  /**
   * For a restarted process: when the server still holds this clientID for the previous
   * process, retry for up to this many ms until the server has evicted it (bounded by the
   * server's heartbeat settings) instead of failing with `stan: clientID already registered`.
   * @default 0
   */
  waitForClientId?: number | undefined;
  /** Called once when the connection is lost for good (healing off, or gave up). */
  onConnectionLost?: ((error: StanConnectionError) => void) | undefined;
  /**
   * Another backend than NATS Streaming, e.g. `backend: jetstream()` from `@stan-ts/jetstream`:
   * the same API on JetStream (see that package's README for the mapping).
   * @default NATS Streaming
   */
  backend?: Backend | undefined;
}

/** {@link ConnectOptions} with every default filled in: the engine's settings. */
export type ResolvedConnectOptions = SessionOptions;

/** The defaults of {@link ConnectOptions}, as in the official clients (pings: as stan.py/java). */
export const defaultConnectOptions = {
  connectTimeout: 2000,
  pubAckTimeout: 30_000,
  maxPubAcksInflight: 16_384,
  pingInterval: 5000,
  pingMaxOut: 3,
  discoverPrefix: "_STAN.discover",
} as const;

/** @internal Validates and merges connect options in one place (backends use it too). */
export function resolveConnectOptions(o: ConnectOptions): ResolvedConnectOptions {
  if (typeof o !== "object" || o === null) invalidArgument("stan: connect options missing");
  const d = defaultConnectOptions;
  const ms = (v: number | undefined, dflt: number, what: string, min = 1) =>
    v === undefined ? dflt : validateInt(v, `${what} (ms)`, min, INT32_MAX);
  const prefix = o.discoverPrefix ?? d.discoverPrefix;
  validateSubject(prefix, "discoverPrefix");
  return {
    clusterId: validateClusterId(o.clusterId),
    clientId: validateClientId(o.clientId),
    connectTimeout: ms(o.connectTimeout, d.connectTimeout, "connectTimeout"),
    pubAckTimeout: ms(o.pubAckTimeout, d.pubAckTimeout, "pubAckTimeout"),
    maxPubAcksInflight:
      o.maxPubAcksInflight === undefined
        ? d.maxPubAcksInflight
        : validateInt(o.maxPubAcksInflight, "maxPubAcksInflight", 1, INT32_MAX),
    pingInterval: ms(o.pingInterval, d.pingInterval, "pingInterval", 100),
    pingMaxOut:
      o.pingMaxOut === undefined
        ? d.pingMaxOut
        : validateInt(o.pingMaxOut, "pingMaxOut", 1, INT32_MAX),
    discoverPrefix: prefix,
    reconnect: resolveReconnect(o.reconnect),
  };
}

function resolveReconnect(r: ReconnectOptions | false | undefined): ReconnectOptions | false {
  if (r === false) return false;
  if (r !== undefined && (typeof r !== "object" || r === null)) {
    invalidArgument("stan: reconnect must be false or { maxAttempts, initialDelay, maxDelay }");
  }
  const maxAttempts = r?.maxAttempts ?? -1;
  if (maxAttempts !== -1)
    validateInt(maxAttempts, "reconnect.maxAttempts (-1: forever)", 0, INT32_MAX);
  return {
    maxAttempts,
    initialDelay: validateInt(r?.initialDelay ?? 250, "reconnect.initialDelay (ms)", 0, INT32_MAX),
    maxDelay: validateInt(r?.maxDelay ?? 5000, "reconnect.maxDelay (ms)", 0, INT32_MAX),
  };
}

/**
 * Where a new subscription starts. Ignored when a durable resumes (it continues where it
 * was). @default "new-only"
 *
 * - `"new-only"`: only messages published from now on
 * - `"last-received"`: the last stored message, then new ones
 * - `"first"`: every stored message (deliver all available)
 * - `{ sequence }`: from that sequence (below the first stored: the first; above the last: new only)
 * - `{ time }`: from the first message stored at or after that time (not in the future)
 * - `{ ago }`: from the first message stored in the last `ago` milliseconds
 *
 * After a heal (see `reconnect`), a durable resumes where the server kept it. A non-durable
 * that has received messages resumes at the first one it has not handed out yet (or the
 * last one received, which is then not handed out twice), and checks the server's first
 * delivery: when the server numbers the channel anew (a memory store restarted), it starts
 * again from that channel's first message. One that has received nothing asks for its
 * start again: `"first"` as given, `{ time }` and `{ ago }` at the same absolute time as
 * the first time (not a new delta), and `"new-only"`, `"last-received"` and `{ sequence }`
 * from when the subscription was made (what the server would have sent it since), so
 * nothing stored while it was away is skipped. Limit: a `{ sequence }` start at a message
 * already stored whose delivery was lost with the session (an outage within the subscribe's
 * round trip) resumes after it.
 */
export type StartAt =
  | "new-only"
  | "last-received"
  | "first"
  | { sequence: number | bigint }
  | { time: Date }
  | { ago: number };

/**
 * Options of `sc.subscribe()`. Its `signal` and `timeout` bound the subscribe call (the
 * request, and a wait for a heal); they do not end the subscription it returns: leave the
 * loop or call `sub.close()` for that.
 */
export interface SubscribeOptions extends CallOptions {
  /** Queue group: each message goes to one member of the group. */
  queue?: string | undefined;
  /** Durable name: the server keeps the position across closes and reconnects. */
  durableName?: string | undefined;
  /** Where a new subscription starts. @default "new-only" */
  startAt?: StartAt | undefined;
  /** Acknowledge with `msg.ack()` instead of automatically. @default false */
  manualAcks?: boolean | undefined;
  /** ms the server waits for an ack before redelivering; whole seconds, >= 1000. @default 30000 */
  ackWait?: number | undefined;
  /** Most unacknowledged messages the server sends this subscription. @default 1024 */
  maxInflight?: number | undefined;
  /**
   * Callback mode: messages are passed to `callback` (in order unless `concurrency` > 1)
   * and, in auto-ack mode, acknowledged once it resolves; never when it throws.
   */
  callback?: ((msg: Message) => void | Promise<void>) | undefined;
  /** Callbacks running at once in callback mode. @default 1 */
  concurrency?: number | undefined;
  /** Called when `callback` throws (otherwise reported on `sc.status()`). */
  onError?: ((err: unknown, msg: Message) => void) | undefined;
}

/** The defaults of {@link SubscribeOptions}. */
export const defaultSubscribeOptions = {
  ackWait: 30_000,
  maxInflight: 1024,
} as const;

/** @internal Validates subscribe options and builds the wire parameters (backends use it too). */
export function resolveSubscribeOptions(
  subject: string,
  o: SubscribeOptions = {},
): SubscribeParams {
  validateSubject(subject);
  const queue = validateName(o.queue, "queue group");
  const durableName = validateName(o.durableName, "durable name");
  if (queue !== undefined && durableName?.includes(":")) {
    invalidArgument(
      "stan: durable name of a durable queue subscriber can't contain the character ':'",
    );
  }
  const ackWait =
    o.ackWait === undefined
      ? defaultSubscribeOptions.ackWait
      : validateInt(o.ackWait, "ackWait (ms, at least 1000)", 1000, INT32_MAX);
  const maxInflight =
    o.maxInflight === undefined
      ? defaultSubscribeOptions.maxInflight
      : validateInt(o.maxInflight, "maxInflight", 1, INT32_MAX);
  if (o.concurrency !== undefined) validateInt(o.concurrency, "concurrency", 1, 65_536);
  if (o.callback !== undefined && typeof o.callback !== "function") {
    invalidArgument("stan: callback must be a function");
  }
  return {
    subject,
    queue,
    durableName,
    maxInflight,
    ackWaitSecs: Math.floor(ackWait / 1000),
    ...startPosition(o.startAt ?? "new-only"),
  };
}

function startPosition(
  start: StartAt,
): Pick<SubscribeParams, "startPosition" | "startSequence" | "startTimeDelta"> {
  if (start === "new-only") return { startPosition: StartPosition.NewOnly };
  if (start === "last-received") return { startPosition: StartPosition.LastReceived };
  if (start === "first") return { startPosition: StartPosition.First };
  if (typeof start === "object" && start !== null) {
    if ("sequence" in start) {
      const seq = start.sequence;
      const ok =
        (typeof seq === "bigint" && seq >= 1n && seq < 2n ** 64n) ||
        (typeof seq === "number" && Number.isSafeInteger(seq) && seq >= 1);
      if (!ok) {
        invalidArgument(
          `stan: invalid start sequence ${String(seq)}: a whole number >= 1 (bigint past 2^53)`,
        );
      }
      return { startPosition: StartPosition.SequenceStart, startSequence: BigInt(seq) };
    }
    if ("time" in start) {
      const t = start.time;
      if (!(t instanceof Date) || Number.isNaN(t.getTime())) {
        invalidArgument("stan: invalid start time: give a valid Date");
      }
      const ago = Date.now() - t.getTime();
      if (ago < 0) {
        invalidArgument(
          `stan: invalid start time ${t.toISOString()}: it is in the future (use "new-only")`,
        );
      }
      return {
        startPosition: StartPosition.TimeDeltaStart,
        startTimeDelta: BigInt(ago) * 1_000_000n,
      };
    }
    if ("ago" in start) {
      const ago = start.ago;
      if (typeof ago !== "number" || !Number.isFinite(ago) || ago < 0) {
        invalidArgument(`stan: invalid start delta ${String(ago)}: milliseconds >= 0`);
      }
      return {
        startPosition: StartPosition.TimeDeltaStart,
        startTimeDelta: BigInt(Math.round(ago * 1_000_000)),
      };
    }
  }
  return invalidArgument(
    `stan: invalid startAt ${JSON.stringify(start)}: "new-only", "last-received", "first", { sequence }, { time } or { ago }`,
  );
}
