import { ErrorCode, StanAbortError, StanTimeoutError } from "./errors.js";

/** Options accepted by every call that waits. */
export interface CallOptions {
  /** Cancels the wait; the call rejects with a {@link StanAbortError}. */
  signal?: AbortSignal | undefined;
  /** Milliseconds before the call rejects with a {@link StanTimeoutError} (code TIMEOUT). */
  timeout?: number | undefined;
}

/**
 * Races `work` against the caller's signal and timeout. The timeout error is created when
 * the call starts, so its stack names the caller. `cleanup` runs when the race is lost.
 */
export function withCancel<T>(
  work: Promise<T>,
  opts: CallOptions | undefined,
  what: string,
  cleanup?: (reason: Error) => void,
): Promise<T> {
  const signal = opts?.signal;
  const timeout = opts?.timeout;
  if (!signal && timeout === undefined) return work;
  const timeoutError = new StanTimeoutError(
    ErrorCode.Timeout,
    `stan: ${what} timed out after ${timeout} ms`,
  );
  if (signal?.aborted) {
    const err = abortError(signal, what);
    cleanup?.(err);
    return Promise.reject(err);
  }
  return new Promise<T>((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = () => fail(abortError(signal as AbortSignal, what));
    const done = () => {
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    const fail = (err: Error) => {
      done();
      cleanup?.(err);
      reject(err);
    };
    if (timeout !== undefined) timer = setTimeout(() => fail(timeoutError), timeout);
    signal?.addEventListener("abort", onAbort, { once: true });
    work.then(
      (v) => {
        done();
        resolve(v);
      },
      (e: unknown) => {
        done();
        reject(e);
      },
    );
  });
}

/** The error for an aborted call, keeping the signal's reason as `cause`. */
export function abortError(signal: AbortSignal, what: string): StanAbortError {
  return new StanAbortError(ErrorCode.Aborted, `stan: ${what} aborted`, { cause: signal.reason });
}
