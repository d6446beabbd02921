/** The publish window: at most `maxPubAcksInflight` publishes unacknowledged, then wait. */

import { type CallOptions, withCancel } from "../cancel.js";
import type { StanConnectionError } from "../errors.js";

/**
 * Slots of the publish window. A publish takes one while its PubAck is awaited (counted by
 * `inFlight`). When none is free, callers wait in order; a woken waiter holds a reserved slot
 * until it sends ({@link PublishWindow.claim}) or passes it on ({@link PublishWindow.wake}).
 */
export class PublishWindow {
  private readonly waiters: Array<() => void> = [];
  /** Slots promised to woken waiters that have not sent yet. */
  private reserved = 0;

  /**
   * @param max the window's size
   * @param inFlight the publishes awaiting their PubAck (its size is read)
   * @param usable undefined while publishing is possible, else the error that ends a wait
   */
  constructor(
    private readonly max: number,
    private readonly inFlight: { readonly size: number },
    private readonly usable: () => StanConnectionError | undefined,
  ) {}

  /** Someone waits for a slot. */
  get waiting(): boolean {
    return this.waiters.length > 0;
  }

  /** A slot is free and nobody waits for one (a publish may go at once). */
  hasRoom(): boolean {
    return this.inFlight.size + this.reserved < this.max && this.waiters.length === 0;
  }

  /** Waits for a slot; resolves holding a reserved one, which the caller then claims. */
  wait(call?: CallOptions): Promise<void> {
    let waiter: (() => void) | undefined;
    const room = new Promise<void>((resolve) => {
      waiter = resolve;
      this.waiters.push(resolve);
    });
    return withCancel(room, call, "publish", () => {
      const i = this.waiters.indexOf(waiter as () => void);
      if (i >= 0) this.waiters.splice(i, 1);
      else this.reserved--; // woken already: give its slot back
      this.wake();
    }).then(() => {
      const closed = this.usable();
      if (closed) {
        this.reserved--;
        throw closed;
      }
    });
  }

  /** The woken caller sends now: its reserved slot becomes an in-flight publish. */
  claim(): void {
    this.reserved--;
  }

  /** Wakes as many waiters as there are free slots, each holding a reserved slot. */
  wake(): void {
    while (this.waiters.length > 0 && this.inFlight.size + this.reserved < this.max) {
      const w = this.waiters.shift() as () => void;
      this.reserved++;
      w();
    }
  }

  /** The session ended: every waiter wakes (and finds it unusable). */
  wakeAll(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}
