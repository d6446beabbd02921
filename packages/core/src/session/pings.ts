/** Client pings: how a session notices that the server no longer answers or knows it. */

import { decode, encode, PingResponseSchema, PingSchema } from "@stan-ts/proto";
import { Messages } from "../errors.js";
import type { NatsMsgLike } from "../transport.js";

/** What the pings need from their session. */
export interface PingHooks {
  /** Sends one ping; resolves with the server's answer. */
  request(bytes: Uint8Array, timeout: number): Promise<NatsMsgLike>;
  /** Pings, and their answers, count only while the session is open. */
  isOpen(): boolean;
  /** A malformed answer (it still proves the server is there). */
  protocolError(err: unknown): void;
  /** A ping went unanswered (`missed` in a row). */
  missed(missed: number, maxOut: number): void;
  /** The server answered with an error, or `maxOut` pings in a row went unanswered. */
  lost(reason: string): void;
}

/** One ping every `interval` ms, each waiting as long for its answer. */
export class Pinger {
  private timer: ReturnType<typeof setInterval> | undefined;
  private missedInRow = 0;
  private bytes: Uint8Array = new Uint8Array(0);

  constructor(
    private readonly interval: number,
    private readonly maxOut: number,
    private readonly hooks: PingHooks,
  ) {}

  /** A new session: no ping is missed yet. */
  reset(): void {
    this.missedInRow = 0;
  }

  /** Starts pinging for the session `connId`. */
  start(connId: Uint8Array): void {
    this.stop();
    this.bytes = encode(PingSchema, { connID: connId });
    this.timer = setInterval(() => this.ping(), this.interval);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private ping(): void {
    const h = this.hooks;
    if (!h.isOpen()) return;
    h.request(this.bytes, this.interval).then(
      (msg) => {
        if (!h.isOpen()) return;
        let error = "";
        try {
          error = decode(PingResponseSchema, msg.data).error;
        } catch (err) {
          h.protocolError(err); // still proves the server is there
        }
        if (error) {
          h.lost(error);
          return;
        }
        this.missedInRow = 0;
      },
      () => this.miss(),
    );
  }

  private miss(): void {
    const h = this.hooks;
    if (!h.isOpen()) return;
    this.missedInRow++;
    h.missed(this.missedInRow, this.maxOut);
    if (this.missedInRow >= this.maxOut) h.lost(Messages.pingFailure);
  }
}
