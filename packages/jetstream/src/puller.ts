// The pull loop of one subscription, on the JetStream wire protocol directly: one pull request
// outstanding at a time ($JS.API.CONSUMER.MSG.NEXT with batch, expires and idle heartbeats),
// the next sent when it is filled or ends. Owning the request (rather than nats 2.x's
// `consume()`, which refills on its own) lets `stop()` know when no request of ours is left
// on the server: nats-server 2.9 keeps an abandoned pull request until it expires and hands it
// messages meanwhile (published ones, and those naked on close), which then wait for
// `ack_wait` instead of going to the durable's next subscriber.
import type { Msg, NatsConnection, Subscription } from "nats";
import { createInbox } from "nats";

/** ms a pull request lives on the server; `stop()` waits at most this (plus a margin). */
export const PULL_EXPIRES = 1000;
/** ms between the server's heartbeats on an idle request. */
const HEARTBEAT = 400;
/** A request with no message and no heartbeat for this long is taken for lost. */
const SILENT = 3 * HEARTBEAT;
/** ms to wait before asking again after "no responders" (leader election, consumer gone). */
const RETRY_DELAY = 250;
const NS = 1_000_000;
const utf8 = new TextEncoder();

/** How a pull request ended, when it ended with a status. */
export interface PullStatus {
  code: number;
  description: string;
}

/** Pulls batches of at most `batch` messages, one request at a time. */
export class Puller {
  private sub: Subscription | undefined;
  private readonly inbox = createInbox();
  /** Messages the outstanding request may still bring, and when it expires at the latest. */
  private outstanding: { left: number; deadline: number } | undefined;
  private lastActivity = 0;
  private stopping = false;
  private drained: (() => void) | undefined;
  private watchdog: ReturnType<typeof setInterval> | undefined;
  private retry: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly stream: string,
    private readonly consumer: string,
    private readonly batch: number,
    private readonly onMessage: (m: Msg) => void,
    private readonly onStatus: (s: PullStatus) => void,
  ) {}

  start(): void {
    this.sub = this.nc.subscribe(this.inbox, { callback: (_err, m) => this.onInbox(m) });
    this.watchdog = setInterval(() => this.check(), HEARTBEAT);
    this.request();
  }

  /** After a NATS reconnect the outstanding request may be gone with the old server. */
  renew(): void {
    if (this.stopping || !this.sub) return;
    this.outstanding = undefined;
    this.request();
  }

  private request(): void {
    if (this.stopping) return;
    const now = Date.now();
    this.outstanding = { left: this.batch, deadline: now + PULL_EXPIRES + SILENT };
    this.lastActivity = now;
    const body = { batch: this.batch, expires: PULL_EXPIRES * NS, idle_heartbeat: HEARTBEAT * NS };
    try {
      this.nc.publish(
        `$JS.API.CONSUMER.MSG.NEXT.${this.stream}.${this.consumer}`,
        utf8.encode(JSON.stringify(body)),
        { reply: this.inbox },
      );
    } catch {
      this.outstanding = undefined; // closed connection: the watchdog stops with the puller
    }
  }

  private onInbox(m: Msg): void {
    this.lastActivity = Date.now();
    if (m.reply?.startsWith("$JS.ACK.")) {
      this.onMessage(m);
      if (this.outstanding && --this.outstanding.left <= 0) this.ended();
      return;
    }
    const code = m.headers?.code ?? 0;
    if (code === 100) return; // idle heartbeat
    const description = m.headers?.description ?? "";
    // 408: expired; 409: ended by the server (leader change, max waiting, consumer deleted);
    // 404: nothing (no_wait); 503: no responders
    this.onStatus({ code, description });
    this.ended(code === 503 ? RETRY_DELAY : 0);
  }

  /** The outstanding request is over: send the next (or finish stopping). */
  private ended(delay = 0): void {
    this.outstanding = undefined;
    if (this.stopping) {
      this.drained?.();
      return;
    }
    if (delay === 0) this.request();
    else this.retry = setTimeout(() => this.request(), delay);
  }

  private check(): void {
    const o = this.outstanding;
    if (!o) return;
    const now = Date.now();
    if (now > o.deadline || now - this.lastActivity > SILENT) this.ended(); // lost: ask again
  }

  /**
   * Sends no more requests and resolves once the outstanding one is over (filled, expired, or
   * given up as lost after its expiry), every message it brought handed to `onMessage`.
   * `wait: false` (the consumer is deleted next) does not wait.
   */
  async stop(wait: boolean): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.retry) clearTimeout(this.retry);
    if (wait && this.outstanding && !this.nc.isClosed()) {
      await new Promise<void>((resolve) => {
        this.drained = resolve;
      });
    }
    if (this.watchdog) clearInterval(this.watchdog);
    try {
      this.sub?.unsubscribe();
    } catch {
      // connection gone
    }
  }
}
