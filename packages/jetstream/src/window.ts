import {
  abortError,
  type CallOptions,
  ErrorCode,
  Messages,
  StanConnectionError,
  StanTimeoutError,
} from "@stan-ts/core";

interface Waiter {
  grant: () => void;
  fail: (err: Error) => void;
}

/**
 * The publish window: at most `size` publishes await their PubAck; the next one waits, in
 * order, for room (as `maxPubAcksInflight` bounds the STAN session). No queue grows without a
 * bound: the waiters are the callers themselves.
 */
export class PublishWindow {
  private used = 0;
  private readonly waiters: Waiter[] = [];
  private closedWith: Error | undefined;

  constructor(private readonly size: number) {}

  /** Publishes awaiting their ack. */
  get inflight(): number {
    return this.used;
  }

  /** Takes a place; resolves at once when there is room. */
  acquire(opts?: CallOptions): Promise<void> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    if (this.used < this.size && this.waiters.length === 0) {
      this.used++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const signal = opts?.signal;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeoutError =
        opts?.timeout === undefined
          ? undefined
          : new StanTimeoutError(
              ErrorCode.Timeout,
              `stan: publish timed out after ${opts.timeout} ms waiting for room in the window`,
            );
      const waiter: Waiter = {
        grant: () => {
          done();
          resolve();
        },
        fail: (err) => {
          done();
          reject(err);
        },
      };
      const drop = (err: Error) => {
        const at = this.waiters.indexOf(waiter);
        if (at >= 0) this.waiters.splice(at, 1);
        waiter.fail(err);
      };
      const onAbort = () => drop(abortError(signal as AbortSignal, "publish"));
      const done = () => {
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      if (signal?.aborted) return reject(abortError(signal, "publish"));
      signal?.addEventListener("abort", onAbort, { once: true });
      if (timeoutError) timer = setTimeout(() => drop(timeoutError), opts?.timeout);
      this.waiters.push(waiter);
    });
  }

  /** Gives a place back; the oldest waiter takes it. */
  release(): void {
    const next = this.waiters.shift();
    if (next) next.grant();
    else this.used--;
  }

  /** Rejects every waiter and every later acquire with `err` (default: connection closed). */
  close(
    err: Error = new StanConnectionError(ErrorCode.ConnectionClosed, Messages.connectionClosed),
  ): void {
    this.closedWith = err;
    for (const w of this.waiters.splice(0)) w.fail(err);
  }
}
