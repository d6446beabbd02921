import {
  type BatchOutcome,
  type CallOptions,
  ErrorCode,
  type NatsConnectionLike,
  type SentPublish,
  Session,
  type SessionEvent,
  StanArgumentError,
  StanConnectionError,
  type StanError,
  validateInt,
  withCancel,
} from "@stan-ts/core";
import { connect as natsConnect } from "nats";
import type { Message } from "./message.js";
import {
  type ConnectOptions,
  resolveConnectOptions,
  resolveSubscribeOptions,
  type SubscribeOptions,
} from "./options.js";
import { type Subscription, SubscriptionImpl } from "./subscription.js";

/**
 * What a publish accepts: bytes as they are, a string as UTF-8, and any other value (number,
 * boolean, `null`, an object or array) as its JSON text. `undefined` is refused with a
 * StanArgumentError: an empty message is `new Uint8Array(0)` or `""`.
 */
export type Payload = Uint8Array | string | number | boolean | null | object;

/** Events of `sc.status()`, a tagged union. */
export type Status =
  | SessionEvent
  | { type: "callback-error"; error: unknown; subject: string; sequence: bigint };

/**
 * A connection to a NATS Streaming server.
 *
 * @example
 * ```ts
 * await using sc = await connect({ clusterId: "test-cluster", clientId: "me", servers: url });
 * const guid = await sc.publish("orders", { id: 1 });
 * ```
 */
export interface StanConnection extends AsyncDisposable {
  readonly clusterId: string;
  readonly clientId: string;
  /** The NATS connection underneath (borrowed or owned). */
  readonly nc: NatsConnectionLike;
  /**
   * True until closed or lost, a heal included: while the session heals itself
   * ({@link StanConnection.isReconnecting}) calls are accepted and wait for it.
   */
  readonly isOpen: boolean;
  /**
   * True while a lost session heals itself: from `disconnected` until `reconnected` (the
   * subscriptions re-created) on {@link StanConnection.status}.
   */
  readonly isReconnecting: boolean;
  /** Publishes awaiting their ack. */
  readonly pendingPublishes: number;
  /**
   * Resolves when the connection ends: `undefined` after `close()`, or the error that ended it.
   * Never rejects.
   */
  readonly closed: Promise<StanError | undefined>;
  /**
   * Publishes and resolves with the message's guid once the server stored it. Waits for room
   * when `maxPubAcksInflight` publishes are unacknowledged.
   * @throws StanServerError the server refused it; StanTimeoutError no ack in `pubAckTimeout`;
   * StanConnectionError closed or lost; StanArgumentError bad subject, data (`undefined`, not
   * JSON-serializable) or size.
   */
  publish(subject: string, data: Payload, opts?: CallOptions): Promise<string>;
  /**
   * Pipelined publish: resolves as soon as the message is queued for sending (after waiting for
   * room in the window) with its guid and the promise of its ack; a burst of them is written to
   * the socket together at the end of the current event-loop turn. Keeps thousands in flight
   * with bounded memory:
   * `for (...) { const { acked } = await sc.publishAsync(s, d); track(acked); }`
   */
  publishAsync(subject: string, data: Payload, opts?: CallOptions): Promise<SentPublish>;
  /**
   * Publishes many messages to one channel and resolves once every one is stored or has
   * failed: one promise for the batch instead of one per message, the fastest way to publish
   * in bulk. Messages go out in order within the same `maxPubAcksInflight` window as single
   * publishes (a batch larger than the window waits for room as it goes). Every payload is
   * encoded and checked against max_payload before any is sent; such a problem rejects the
   * call with a StanArgumentError and sends nothing. Each message's own failure (server
   * refusal, ack timeout, connection closed, `opts.signal` aborted) is reported in
   * `failures` by index, never as a rejection, so a caller can re-send exactly those:
   * `const { failures } = await sc.publishBatch("orders", items);`
   */
  publishBatch(
    subject: string,
    messages: Iterable<Payload>,
    opts?: CallOptions,
  ): Promise<BatchOutcome>;
  /** Creates a subscription; see {@link SubscribeOptions}. */
  subscribe(subject: string, opts?: SubscribeOptions): Promise<Subscription>;
  /** Session events as an async iterable (ends when the connection ends). */
  status(): AsyncIterable<Status>;
  /**
   * Closes the session (non-durable subscriptions are removed, durables kept), rejects what is
   * pending with `stan: connection closed`, and closes the NATS connection if the SDK owns it.
   * Idempotent. Rejects with `stan: close request timeout` when the server does not answer
   * (local resources are released all the same); `await using` ignores that.
   */
  close(opts?: CallOptions): Promise<void>;
}

const utf8 = new TextEncoder();

/**
 * Turns a {@link Payload} into bytes; `what` names it in error messages.
 * @throws StanArgumentError for `undefined` or a value JSON cannot encode.
 */
export function toBytes(data: Payload, what = "data"): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (typeof data === "string") return utf8.encode(data);
  if (data === undefined) {
    throw new StanArgumentError(
      ErrorCode.InvalidArgument,
      `stan: ${what} is undefined: pass a Uint8Array, a string or a JSON value (an empty message is new Uint8Array(0) or "")`,
    );
  }
  let json: string | undefined;
  try {
    json = JSON.stringify(data);
  } catch (err) {
    throw new StanArgumentError(
      ErrorCode.InvalidArgument,
      `stan: ${what} is not JSON-serializable (${(err as Error).message}): pass a Uint8Array, a string or a JSON value`,
      { cause: err },
    );
  }
  if (json === undefined) {
    throw new StanArgumentError(
      ErrorCode.InvalidArgument,
      `stan: ${what} of type ${typeof data} is not JSON-serializable: pass a Uint8Array, a string or a JSON value`,
    );
  }
  return utf8.encode(json);
}

/** Runs `send` on the payload's bytes; a payload that cannot be encoded is a rejection. */
function withBytes<T>(data: Payload, send: (bytes: Uint8Array) => Promise<T>): Promise<T> {
  let bytes: Uint8Array;
  try {
    bytes = toBytes(data);
  } catch (err) {
    return Promise.reject(err);
  }
  return send(bytes);
}

const STATUS_BUFFER = 1024;

class StanConnectionImpl implements StanConnection {
  readonly closed: Promise<StanError | undefined>;
  private resolveClosed!: (e: StanError | undefined) => void;
  private readonly statusListeners = new Set<(s: Status | undefined) => void>();
  private ended = false;

  constructor(
    private readonly session: Session,
    readonly nc: NatsConnectionLike,
    private readonly ownsNc: boolean,
    onLost: ((e: StanConnectionError) => void) | undefined,
  ) {
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    session.onEvent((e) => {
      this.emit(e);
      if (e.type === "connection-lost") {
        if (this.ownsNc && !this.nc.isClosed()) void this.nc.close().catch(() => {});
        try {
          onLost?.(e.error);
        } catch {
          // the hook's own failure
        }
        this.end(e.error);
      } else if (e.type === "closed") this.end(undefined);
    });
  }

  get clusterId(): string {
    return this.session.clusterId;
  }
  get clientId(): string {
    return this.session.clientId;
  }
  get isOpen(): boolean {
    return this.session.isOpen;
  }
  get isReconnecting(): boolean {
    return this.session.isReconnecting;
  }
  get pendingPublishes(): number {
    return this.session.pendingPublishes;
  }

  private emit(s: Status): void {
    for (const l of this.statusListeners) l(s);
  }

  private end(error: StanError | undefined): void {
    this.ended = true;
    for (const l of this.statusListeners) l(undefined);
    this.statusListeners.clear();
    this.resolveClosed(error);
  }

  publish(subject: string, data: Payload, opts?: CallOptions): Promise<string> {
    return withBytes(data, (bytes) => this.session.publish(subject, bytes, opts));
  }

  publishAsync(subject: string, data: Payload, opts?: CallOptions): Promise<SentPublish> {
    let bytes: Uint8Array;
    try {
      bytes = toBytes(data);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.session.send(subject, bytes, opts); // no closure per call: the hot path
  }

  publishBatch(
    subject: string,
    messages: Iterable<Payload>,
    opts?: CallOptions,
  ): Promise<BatchOutcome> {
    const datas: Uint8Array[] = [];
    try {
      let i = 0;
      for (const m of messages) datas.push(toBytes(m, `message ${i++} of the batch`));
    } catch (err) {
      return Promise.reject(err);
    }
    return this.session.sendBatch(subject, datas, opts);
  }

  async subscribe(subject: string, opts: SubscribeOptions = {}): Promise<Subscription> {
    const params = resolveSubscribeOptions(subject, opts);
    const sub = new SubscriptionImpl(subject, params.queue, params.durableName, !!opts.manualAcks);
    sub.core = await this.session.subscribe(params, sub, opts);
    if (opts.callback) {
      sub.runCallback(
        {
          callback: opts.callback,
          concurrency: opts.concurrency ?? 1,
          onError: opts.onError,
        },
        (error, msg: Message) =>
          this.emit({ type: "callback-error", error, subject, sequence: msg.sequence }),
      );
    }
    return sub;
  }

  status(): AsyncIterable<Status> {
    const queue: Status[] = [];
    let wake: (() => void) | undefined;
    let done = this.ended;
    const listener = (s: Status | undefined) => {
      if (s === undefined) done = true;
      else {
        if (queue.length >= STATUS_BUFFER) queue.shift();
        queue.push(s);
      }
      wake?.();
      wake = undefined;
    };
    if (!done) this.statusListeners.add(listener);
    const self = this;
    return {
      async *[Symbol.asyncIterator]() {
        try {
          for (;;) {
            while (queue.length > 0) yield queue.shift() as Status;
            if (done) return;
            await new Promise<void>((r) => {
              wake = r;
            });
          }
        } finally {
          self.statusListeners.delete(listener);
        }
      },
    };
  }

  async close(opts?: CallOptions): Promise<void> {
    try {
      await this.session.close(opts);
    } finally {
      if (this.ownsNc && !this.nc.isClosed()) await this.nc.close().catch(() => {});
    }
  }

  /**
   * `await using`: closes like {@link StanConnection.close} but never throws. Everything local
   * is released either way; a server that does not answer the close request (it is gone) is
   * no reason to fail the scope. Call `close()` to see the server's answer.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close().catch(() => {});
  }
}

/**
 * Connects to a NATS Streaming server.
 *
 * @example
 * ```ts
 * import { connect } from "stan-ts";
 * const sc = await connect({ clusterId: "test-cluster", clientId: "worker-1" });
 * ```
 * @throws StanTimeoutError `stan: connect request timeout (possibly wrong cluster ID?)` when no
 * streaming server answers; StanServerError when it refuses (e.g. `stan: clientID already
 * registered`); StanArgumentError for bad options; StanConnectionError (code CONNECT_FAILED)
 * when the first NATS connection cannot be made; StanAbortError / StanTimeoutError when
 * `signal` or `timeout` ends the call, which bound the whole call, the NATS connect included,
 * and close whatever it had opened.
 */
export async function connect(options: ConnectOptions): Promise<StanConnection> {
  if (options?.backend) return options.backend.connect(options);
  const resolved = resolveConnectOptions(options);
  // What this call has opened so far, so that a lost race (signal, timeout) closes it, and
  // anything that opens after the race was lost is closed as soon as it appears.
  let settled = false;
  let ownNc: NatsConnectionLike | undefined;
  let made: StanConnection | undefined;
  const cleanup = () => {
    settled = true;
    if (made) void made.close().catch(() => {});
    else if (ownNc) void ownNc.close().catch(() => {});
  };
  const work = connectInner(options, resolved, (nc) => {
    ownNc = nc;
    if (settled) void nc.close().catch(() => {});
  }).then((sc) => {
    made = sc;
    if (settled) void sc.close().catch(() => {});
    return sc;
  });
  work.catch(() => {}); // a rejection after a lost race has no one to tell
  return withCancel(work, options, "connect", cleanup);
}

async function connectInner(
  options: ConnectOptions,
  resolved: ReturnType<typeof resolveConnectOptions>,
  opened: (nc: NatsConnectionLike) => void,
): Promise<StanConnection> {
  let nc = options.nc;
  const owns = nc === undefined;
  if (!nc) {
    const servers = options.servers ?? "nats://127.0.0.1:4222";
    try {
      nc = (await natsConnect({
        servers,
        name: resolved.clientId,
        maxReconnectAttempts: -1,
        // A peer that accepts TCP but never sends NATS's INFO fails after this, not 20 s.
        timeout: resolved.connectTimeout,
        ...options.natsOptions,
      })) as unknown as NatsConnectionLike;
    } catch (err) {
      throw new StanConnectionError(
        ErrorCode.ConnectFailed,
        `stan: cannot connect to NATS at ${servers}: ${(err as Error).message}` +
          " (is a NATS or NATS Streaming server listening there?)",
        { cause: err },
      );
    }
    opened(nc);
  }
  const waitUntil =
    options.waitForClientId === undefined
      ? 0
      : Date.now() + validateInt(options.waitForClientId, "waitForClientId (ms)", 0, 2 ** 31 - 1);
  try {
    for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
      try {
        const session = await Session.open(nc, resolved, options);
        return new StanConnectionImpl(session, nc, owns, options.onConnectionLost);
      } catch (err) {
        const retry =
          err instanceof Error &&
          err.message === "stan: clientID already registered" &&
          Date.now() + delay < waitUntil &&
          !options.signal?.aborted;
        if (!retry) throw err;
        await new Promise((r) => setTimeout(r, delay)); // the server evicts on its own schedule
      }
    }
  } catch (err) {
    if (owns) await nc.close().catch(() => {});
    throw err;
  }
}
