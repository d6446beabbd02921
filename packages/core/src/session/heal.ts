/**
 * Loss and heal: `lose()` (missed pings, a replaced client, a failed resubscribe), then, unless
 * `reconnect: false`, `heal()` registers again with backoff and `restore()` re-sends the
 * unacknowledged publishes and re-creates every subscription (a bounded number at a time),
 * emitting `disconnected`, `reconnecting`, `republished`, `resubscribed`/`resubscribe-failed`
 * and `reconnected`. Where each subscription resumes is decided in subscription.ts.
 */

import { ErrorCode, StanConnectionError, type StanError } from "../errors.js";
import type { Handshake } from "./handshake.js";
import type { Pinger } from "./pings.js";
import type { Publisher } from "./publishing.js";
import { isTransientResubscribeError } from "./replies.js";
import type { Session } from "./session.js";
import type { SessionPhase, SessionState } from "./state.js";
import type { Subscriptions } from "./subscribing.js";
import type { CoreSubscription } from "./subscription.js";

/** Subscription requests in flight at once while a healed session re-creates its subscriptions. */
const RESUBSCRIBE_CONCURRENCY = 16;

/** @internal A session's loss and heal (see the file's comment). */
export class Healer {
  constructor(
    private readonly s: SessionState,
    private readonly session: Session,
    private readonly handshake: Handshake,
    private readonly publisher: Publisher,
    private readonly subscriptions: Subscriptions,
    private readonly pings: Pinger,
  ) {}

  /**
   * The session was lost (pings, replaced client). With self-healing on, it registers again
   * and pending work waits; otherwise it ends as {@link Session.fail} does.
   */
  lose(reason: string, cause?: unknown): void {
    if (this.s.state !== "open") return;
    if (this.s.opts.reconnect === false || this.s.nc.isClosed()) {
      this.session.fail(reason, cause);
      return;
    }
    const error = new StanConnectionError(ErrorCode.ConnectionLost, reason, { cause });
    this.s.state = "reconnecting";
    this.s.ready = false;
    this.s.epoch++;
    // not open: drops the outbox (pending publishes are re-sent after the heal)
    this.s.outbox.flush();
    this.pings.stop();
    this.handshake.stopHeartbeats();
    this.subscriptions.lostAll();
    this.s.emit({ type: "disconnected", error });
    void this.heal(error);
  }

  private async heal(lostWith: StanConnectionError): Promise<void> {
    const o = this.s.opts.reconnect || {};
    const maxAttempts = o.maxAttempts ?? -1;
    let delay = o.initialDelay ?? 250;
    const maxDelay = o.maxDelay ?? 5000;
    let attempt = 0;
    let lastError: StanError = lostWith;
    let duplicates = 0;
    while (this.s.state === "reconnecting") {
      attempt++;
      if (maxAttempts >= 0 && attempt > maxAttempts) {
        this.session.fail(
          `stan: reconnect gave up after ${maxAttempts} attempts: ${lastError.message}`,
          lastError,
        );
        return;
      }
      const wait = attempt === 1 ? 0 : Math.round(delay * (0.75 + Math.random() * 0.5));
      this.s.emit({ type: "reconnecting", attempt, delay: wait, lastError });
      if (wait > 0) {
        await new Promise<void>((r) => {
          const t = setTimeout(r, wait);
          this.s.reopenWaiters.push(() => {
            clearTimeout(t);
            r();
          });
        });
        if (this.s.state !== "reconnecting") return;
        delay = Math.min(maxDelay, delay * 2);
      }
      this.s.renewConnId();
      try {
        await this.handshake.run();
      } catch (err) {
        lastError = err as StanError;
        if (this.s.nc.isClosed()) {
          this.session.fail("stan: NATS connection closed", err);
          return;
        }
        const text = (err as Error).message;
        if (/invalid clientID|invalid connection request/.test(text)) {
          this.session.fail(text, err);
          return;
        }
        // Another live client holds the ID (we were really replaced): do not fight it forever.
        if (text === "stan: clientID already registered" && ++duplicates >= 5) {
          this.session.fail(text, err);
          return;
        }
        continue;
      }
      // handshake() opened the session, unless close() raced it (the await widens the state)
      if ((this.s.state as SessionPhase) !== "open") return;
      await this.restore(attempt);
      return;
    }
  }

  /** After a heal: re-create subscriptions, re-send unacknowledged publishes, wake waiters. */
  private async restore(attempts: number): Promise<void> {
    // First, synchronously: publishes made from now on (the session is open again) must not
    // overtake those that waited through the outage.
    let count: number;
    try {
      count = this.publisher.resendPending();
    } catch (err) {
      // NATS refused (it is closing): this runs inside the heal, nobody awaits it, so end the
      // session with the cause instead of letting it escape as an unhandled rejection.
      this.session.fail(
        `stan: re-sending publishes after a heal failed: ${(err as Error).message}`,
        err,
      );
      return;
    }
    if (count > 0) this.s.emit({ type: "republished", count });
    // Subscriptions are re-created concurrently (a bounded number of requests at a time), so
    // a client with many of them heals in a few round trips rather than one per subscription.
    // After a transient failure no new request starts, and the session is lost again only
    // once those in flight have settled: none of them can then land in the next session.
    const subs = [...this.subscriptions.subs];
    let next = 0;
    let transient: StanError | undefined;
    const worker = async (): Promise<void> => {
      while (next < subs.length && this.s.state === "open" && !transient) {
        const error = await this.resubscribe(subs[next++] as CoreSubscription);
        transient ??= error;
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(RESUBSCRIBE_CONCURRENCY, subs.length) }, worker),
    );
    if (transient && this.s.state === "open") {
      // The server went away (or forgot this client) while the session was being restored:
      // heal again and re-create every subscription, rather than give one up.
      this.lose(`stan: resubscribe failed: ${transient.message}`, transient);
      return;
    }
    if (this.s.state !== "open") return;
    this.s.ready = true;
    this.s.wakeReopen();
    this.publisher.window.wake();
    this.s.emit({ type: "reconnected", attempts });
  }

  /**
   * Re-creates one subscription after a heal. Returns a transient error (the server is gone
   * or forgot this client) for the caller to heal again; any other failure ends `sub`.
   */
  private async resubscribe(sub: CoreSubscription): Promise<StanError | undefined> {
    if (!this.subscriptions.subs.has(sub)) return undefined; // closed or unsubscribed meanwhile
    try {
      await sub.resubscribe();
      if (this.s.state !== "open") return undefined;
      if (!this.subscriptions.subs.has(sub)) {
        // Given up while its request was in flight (closed, or an unsubscribe that timed out
        // waiting): take the new registration offline, or a durable stays online on a dead inbox.
        this.subscriptions.closeOnServer(sub);
        return undefined;
      }
      this.s.emit({
        type: "resubscribed",
        subject: sub.params.subject,
        durableName: sub.params.durableName,
        queue: sub.params.queue,
      });
    } catch (err) {
      if (this.s.state !== "open") return undefined;
      const error = err as StanError;
      if (isTransientResubscribeError(error)) return error;
      this.subscriptions.subs.delete(sub);
      this.s.emit({ type: "resubscribe-failed", subject: sub.params.subject, error });
      sub.terminate(error);
    }
    return undefined;
  }

  /**
   * A healed non-durable found that the server numbers its channel anew (a memory
   * store restarted): re-create it from the first message. Its delivery inbox is dropped now;
   * a heal that comes meanwhile re-creates it the same way.
   */
  async restartSubscription(sub: CoreSubscription): Promise<void> {
    sub.detach();
    if (sub.resubscribing) await sub.resubscribing; // the heal's own request for it
    if (this.s.state !== "open" || sub.isEnded || !this.subscriptions.subs.has(sub)) return;
    this.subscriptions.closeOnServer(sub);
    const error = await this.resubscribe(sub);
    if (error && this.s.state === "open") {
      this.lose(`stan: resubscribe failed: ${error.message}`, error);
    }
  }
}
