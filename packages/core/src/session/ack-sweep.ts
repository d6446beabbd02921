/** The timer that expires publishes whose PubAck did not come in time. */

import type { PendingQueue } from "../pending.js";
import type { PendingPub } from "./publish-batch.js";

/**
 * One timer per session expires PubAcks. Entries are in send order, so a sweep stops at the
 * first one not yet due, unless some publish has its own timeout (then it scans them all).
 */
export class AckSweep {
  private timer: ReturnType<typeof setInterval> | undefined;
  private every = 0;
  /** Pending publishes with a timeout of their own (their deadlines are not in send order). */
  customDeadlines = 0;

  constructor(
    private readonly pending: PendingQueue<PendingPub>,
    private readonly expire: (p: PendingPub) => void,
  ) {}

  /** Runs the sweep often enough for a deadline `timeout` ms away (a quarter of it, 10 ms to 1 s). */
  start(timeout: number): void {
    const every = Math.max(10, Math.min(1000, Math.floor(timeout / 4)));
    if (this.timer && every >= this.every) return;
    if (this.timer) clearInterval(this.timer);
    this.every = every;
    this.timer = setInterval(() => this.sweep(), every);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.every = 0;
    this.customDeadlines = 0;
  }

  private sweep(): void {
    const now = Date.now();
    const fullScan = this.customDeadlines > 0;
    const expired: PendingPub[] = [];
    for (const p of this.pending) {
      if (p.deadline <= now) expired.push(p);
      else if (!fullScan) break;
    }
    for (const p of expired) this.expire(p);
  }
}
