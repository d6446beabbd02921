/**
 * The small structural view of a NATS connection that the engine needs. A connection of the
 * `nats` 2.x package and one of `@nats-io/transport-node` 3.x both satisfy it, so neither is a
 * dependency of the engine.
 */

/** A message received from NATS. */
export interface NatsMsgLike {
  readonly subject: string;
  readonly reply?: string | undefined;
  readonly data: Uint8Array;
  /** Present on status messages (e.g. 503 no responders) in nats.js. */
  readonly headers?: unknown;
}

/** A core NATS subscription. */
export interface NatsSubscriptionLike {
  /** Stops the subscription, at once or after `max` messages in all. */
  unsubscribe(max?: number): void;
}

/** The part of a NATS connection the engine uses. */
export interface NatsConnectionLike {
  /** The server's INFO, read for `max_payload` (the largest message it accepts). */
  readonly info?: { readonly max_payload?: number } | undefined;
  /** Publishes a message, with an optional reply subject. */
  publish(subject: string, payload?: Uint8Array, options?: { reply?: string }): void;
  /** Subscribes to a subject; messages go to `callback`. */
  subscribe(
    subject: string,
    options?: {
      callback?: (err: Error | null, msg: NatsMsgLike) => void;
      max?: number;
    },
  ): NatsSubscriptionLike;
  /** Sends a request and resolves with the first reply, or rejects after `timeout` ms. */
  request(
    subject: string,
    payload?: Uint8Array,
    options?: { timeout?: number; noMux?: boolean },
  ): Promise<NatsMsgLike>;
  /** Resolves once the server has processed everything sent so far. */
  flush(): Promise<void>;
  /** Resolves (with an error or nothing) when the connection is closed for good. */
  closed(): Promise<unknown>;
  /** True once the connection is closed. */
  isClosed(): boolean;
  /** Closes the connection. */
  close(): Promise<void>;
}

/** True when a request failed because no one subscribes to its subject (NATS 503). */
export function isNoResponders(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  const e = err as { code?: unknown; name?: unknown; message?: unknown };
  return (
    e.code === "503" ||
    e.code === 503 ||
    e.name === "NoRespondersError" ||
    (typeof e.message === "string" && /no responders/i.test(e.message))
  );
}

/** True when a request failed because its time ran out. */
export function isRequestTimeout(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  const e = err as { code?: unknown; name?: unknown; message?: unknown };
  return (
    e.code === "TIMEOUT" ||
    e.name === "TimeoutError" ||
    (typeof e.message === "string" && /timeout/i.test(e.message))
  );
}

/**
 * True for a NATS status message (headers only, e.g. `503` no responders, which nats-server
 * sends to a publish's reply subject when no streaming server subscribes to it).
 */
export function isStatusMessage(msg: NatsMsgLike): boolean {
  if (msg.data.length !== 0 || typeof msg.headers !== "object" || msg.headers === null) {
    return false;
  }
  const h = msg.headers as { code?: unknown; status?: unknown };
  return typeof h.code === "number" ? h.code >= 100 : typeof h.status === "string";
}
