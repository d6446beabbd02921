/**
 * Error codes of stan-ts. Every error the SDK raises is a {@link StanError} with one of them.
 *
 * Where the official NATS Streaming clients have a message text for the same condition, the
 * SDK keeps that text, so that searches for it still find answers.
 */
export const ErrorCode = {
  /** Invalid argument given to an SDK call (subject, clientID, option out of range...). */
  InvalidArgument: "INVALID_ARGUMENT",
  /** The payload is larger than the NATS server's max_payload. */
  MaxPayloadExceeded: "MAX_PAYLOAD_EXCEEDED",
  /** No streaming server answered the connect request. */
  ConnectTimeout: "CONNECT_TIMEOUT",
  /** A request to the streaming server (subscribe, unsubscribe, close) timed out. */
  RequestTimeout: "REQUEST_TIMEOUT",
  /** The publish was not acknowledged within the ack timeout. */
  PubAckTimeout: "PUB_ACK_TIMEOUT",
  /** The streaming server answered with an error (its text is the message). */
  ServerError: "SERVER_ERROR",
  /** The connection was closed by the user. */
  ConnectionClosed: "CONNECTION_CLOSED",
  /** The connection to the streaming server was lost (pings, replaced client, NATS closed). */
  ConnectionLost: "CONNECTION_LOST",
  /** The subscription is closed, or not known to the server. */
  InvalidSubscription: "INVALID_SUBSCRIPTION",
  /** `ack()` was called on a message of an auto-ack subscription. */
  ManualAckInAutoAckMode: "MANUAL_ACK_IN_AUTO_ACK_MODE",
  /** The server does not support this operation (e.g. subscription close on very old servers). */
  NotSupported: "NOT_SUPPORTED",
  /** A subscription is already being iterated by another consumer. */
  AlreadyIterating: "ALREADY_ITERATING",
  /** The operation was aborted through its AbortSignal. */
  Aborted: "ABORTED",
  /** The operation's own `timeout` elapsed. */
  Timeout: "TIMEOUT",
  /** A message from the network could not be decoded. */
  ProtocolError: "PROTOCOL_ERROR",
  /**
   * The first connection to NATS could not be made (unreachable, refused, or a peer that
   * accepts TCP but never speaks NATS). Unlike CONNECTION_LOST, nothing was ever connected.
   */
  ConnectFailed: "CONNECT_FAILED",
  /** A message's payload is not what the reader asked for (`msg.json()` on text that is not JSON). */
  DecodeFailed: "DECODE_FAILED",
} as const;

/** One of the {@link ErrorCode} values. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const BRAND = Symbol.for("stan-ts.StanError");

/**
 * The base class of every error raised by stan-ts.
 *
 * Use {@link isStanError} rather than `instanceof` when several copies of the package may be
 * loaded; `code` tells what happened, `cause` keeps the underlying error.
 */
export class StanError extends Error {
  /** What happened, as a stable machine-readable code. */
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
    Object.defineProperty(this, BRAND, { value: true });
  }
}

/** Invalid input to an SDK call; the call had no effect. */
export class StanArgumentError extends StanError {}
/** A deadline passed: connect, request, publish ack, or the caller's own `timeout`. */
export class StanTimeoutError extends StanError {}
/** The streaming server refused the request; `message` is the server's text. */
export class StanServerError extends StanError {}
/** The connection is closed or lost; pending work was rejected with this. */
export class StanConnectionError extends StanError {}
/** The subscription cannot be used (closed, unknown to the server, iterated twice). */
export class StanSubscriptionError extends StanError {}
/** The operation was cancelled through its AbortSignal. */
export class StanAbortError extends StanError {}
/** Malformed data from the network. */
export class StanProtocolError extends StanError {}

/**
 * A delivered message's payload could not be decoded as asked (`msg.json()` on a payload that
 * is not JSON); code DECODE_FAILED, the parser's error as `cause`. The message itself is fine:
 * acknowledge it or not as the application decides.
 */
export class StanDecodeError extends StanError {
  /** The channel of the message. */
  readonly subject: string;
  /** The message's sequence in its channel. */
  readonly sequence: bigint;

  constructor(subject: string, sequence: bigint, message: string, options?: { cause?: unknown }) {
    super(ErrorCode.DecodeFailed, message, options);
    this.subject = subject;
    this.sequence = sequence;
  }
}

/** True when `err` is a {@link StanError} (works across duplicate package copies). */
export function isStanError(err: unknown): err is StanError {
  return (
    typeof err === "object" && err !== null && (err as Record<symbol, unknown>)[BRAND] === true
  );
}

/** True when `err` is a {@link StanError} with the given code. */
export function hasErrorCode(err: unknown, code: ErrorCode): err is StanError {
  return isStanError(err) && err.code === code;
}

/** Message texts shared with the official clients. */
export const Messages = {
  connectTimeout: "stan: connect request timeout (possibly wrong cluster ID?)",
  closeTimeout: "stan: close request timeout",
  subscribeTimeout: "stan: subscribe request timeout",
  unsubscribeTimeout: "stan: unsubscribe request timeout",
  connectionClosed: "stan: connection closed",
  pubAckTimeout: "stan: publish ack timeout",
  invalidSubscription: "stan: invalid subscription",
  invalidConnection: "stan: invalid connection",
  manualAck: "stan: cannot manually ack in auto-ack mode",
  notSupported: "stan: not supported by server",
  pingFailure: "stan: connection lost due to PING failure",
} as const;
