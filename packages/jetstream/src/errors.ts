import { ErrorCode, hasErrorCode, StanError } from "@stan-ts/core";

/**
 * A NATS Streaming behaviour that JetStream cannot give (see the README's table of
 * differences). Its code is `NOT_SUPPORTED`; the message names the option and what to do.
 */
export class StanNotSupportedError extends StanError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.NotSupported, message, options);
  }
}

/** True when `err` is a {@link StanNotSupportedError} (works across duplicate package copies). */
export function isNotSupported(err: unknown): err is StanNotSupportedError {
  return hasErrorCode(err, ErrorCode.NotSupported);
}

/** The JetStream API error code of a failed request, if it is one (e.g. 10059: no stream). */
export function apiErrorCode(err: unknown): number | undefined {
  const api = (err as { api_error?: { err_code?: number } } | null)?.api_error;
  return typeof api?.err_code === "number" ? api.err_code : undefined;
}

/** JetStream API error codes this package reacts to. */
export const JsApiError = {
  StreamNotFound: 10059,
  ConsumerNotFound: 10014,
} as const;

/** True when a JetStream API request failed because the stream or consumer does not exist. */
export function isNotFound(err: unknown): boolean {
  const code = apiErrorCode(err);
  if (code !== undefined)
    return code === JsApiError.StreamNotFound || code === JsApiError.ConsumerNotFound;
  return (err as { code?: unknown } | null)?.code === "404";
}
