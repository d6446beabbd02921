/** Turning the server's replies and request failures into typed errors. */
import type { Message } from "@bufbuild/protobuf";
import type { GenMessage } from "@bufbuild/protobuf/codegenv2";
import { ConnectResponseSchema, decode } from "@stan-ts/proto";
import {
  ErrorCode,
  hasErrorCode,
  isStanError,
  StanConnectionError,
  type StanError,
  StanProtocolError,
  StanServerError,
  StanTimeoutError,
} from "../errors.js";
import { isNoResponders, isRequestTimeout } from "../transport.js";
import type { CoreSubscription } from "./subscription.js";
/**
 * A resubscribe failure that says nothing about the subscription itself: the request timed out
 * or the connection went (the server is down again), or the server no longer knows this client
 * (it lost its state). The session heals again instead of ending the subscription.
 */
export function isTransientResubscribeError(err: unknown): boolean {
  if (err instanceof StanTimeoutError || err instanceof StanConnectionError) return true;
  return err instanceof StanServerError && err.message === "stan: unknown clientID";
}

/**
 * The error of an unsubscribe given up before it was sent (its wait for a heal timed out or
 * was aborted): for a durable, says that its state stays on the server. Same class and code.
 */
export function notDeleted(err: unknown, sub: CoreSubscription): unknown {
  const name = sub.params.durableName;
  if (!name || !isStanError(err)) return err;
  const Ctor = err.constructor as new (
    code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) => StanError;
  return new Ctor(
    err.code,
    `${err.message}; the durable "${name}" was not deleted (it stays on the server: subscribe with that durable name and unsubscribe again)`,
    { cause: err },
  );
}

/** Decodes a reply, turning malformed bytes into a {@link StanProtocolError}. */
export function decodeConnectResponse(data: Uint8Array) {
  return decodeOrProtocolError(ConnectResponseSchema, data, "ConnectResponse");
}

export function decodeOrProtocolError<T extends Message>(
  schema: GenMessage<T>,
  bytes: Uint8Array,
  what: string,
): T {
  try {
    return decode(schema, bytes);
  } catch (err) {
    throw new StanProtocolError(
      ErrorCode.ProtocolError,
      `stan: malformed ${what} from the server`,
      {
        cause: err,
      },
    );
  }
}

export function mapRequestError(
  err: unknown,
  timeoutText: string,
  code: ErrorCode = ErrorCode.RequestTimeout,
): StanError {
  if (hasErrorCode(err, ErrorCode.Aborted) || hasErrorCode(err, ErrorCode.Timeout)) return err;
  if (isNoResponders(err) || isRequestTimeout(err)) {
    return new StanTimeoutError(code, timeoutText, { cause: err });
  }
  return new StanConnectionError(ErrorCode.ConnectionLost, `${timeoutText}: ${String(err)}`, {
    cause: err,
  });
}
