/** The outbox: publishes and acks waiting to be handed to NATS together. */

import type { FrameWriter } from "../frames.js";
import type { NatsConnectionLike } from "../transport.js";

const EMPTY = new Uint8Array(0);

/** The outbox is handed to NATS at once when it holds this many messages or bytes. */
const OUTBOX_MAX_MSGS = 512;
const OUTBOX_MAX_BYTES = 64 * 1024;

/**
 * Runs `fn` once the I/O callbacks of this turn of the event loop are done (setImmediate where
 * the runtime has it). Deferring a burst of publishes this far lets the NATS client write them
 * to the socket in one go instead of one write per message.
 */
const defer: (fn: () => void) => void =
  typeof globalThis.setImmediate === "function"
    ? (fn) => {
        globalThis.setImmediate(fn);
      }
    : (fn) => {
        setTimeout(fn, 0);
      };

/**
 * Publishes and acks queued for NATS (parallel arrays, reused, so queueing allocates
 * nothing). Handed over when full, before any request (the session calls {@link Outbox.flush}
 * first, so order is kept), or once this turn's I/O callbacks are done: a pipelined burst of
 * publishes or acks then costs one socket write, not one per message.
 */
export class Outbox {
  private subjects: string[] = [];
  private data: Uint8Array[] = [];
  /** `pubOpts` for a publish (its guid is in `guids`), undefined for an ack. */
  private opts: Array<{ reply: string } | undefined> = [];
  private guids: string[] = [];
  private count = 0;
  private bytes = 0;
  private scheduled = false;
  private readonly flushLater = (): void => {
    this.scheduled = false;
    this.flush();
  };

  /**
   * @param frames writes the outbox as one pre-framed command when `nc` is a nats.js
   * connection (frames.ts); otherwise each message goes through `nc.publish()`
   * @param isOpen whether to send at all: when not, the outbox is dropped (publishes stay
   * pending and are re-sent after a heal; acks are redelivered)
   * @param failed a publish NATS refused (by its guid)
   */
  constructor(
    private readonly nc: NatsConnectionLike,
    private readonly frames: FrameWriter | undefined,
    private readonly isOpen: () => boolean,
    private readonly failed: (guid: string, err: unknown) => void,
  ) {}

  /** Messages queued. */
  get size(): number {
    return this.count;
  }

  /** Queues a message: `opts` and `guid` for a publish, undefined and "" for an ack. */
  enqueue(
    subject: string,
    data: Uint8Array,
    opts: { reply: string } | undefined,
    guid: string,
  ): void {
    const i = this.count++;
    this.subjects[i] = subject;
    this.data[i] = data;
    this.opts[i] = opts;
    this.guids[i] = guid;
    this.bytes += data.length;
    if (this.count >= OUTBOX_MAX_MSGS || this.bytes >= OUTBOX_MAX_BYTES) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      defer(this.flushLater);
    }
  }

  /** Hands the outbox to NATS (drops it when the session is no longer open). */
  flush(): void {
    const n = this.count;
    if (n === 0) return;
    this.count = 0;
    this.bytes = 0;
    const open = this.isOpen();
    const frames = this.frames;
    if (open && frames?.usable) {
      // one command for the whole outbox (see frames.ts); nothing here can throw per message
      for (let i = 0; i < n; i++) {
        const data = this.data[i] as Uint8Array;
        this.data[i] = EMPTY;
        frames.publish(this.subjects[i] as string, this.opts[i]?.reply ?? "", data);
      }
      frames.flush();
      return;
    }
    for (let i = 0; i < n; i++) {
      const subject = this.subjects[i] as string;
      const data = this.data[i] as Uint8Array;
      const opts = this.opts[i];
      const guid = this.guids[i] as string;
      this.data[i] = EMPTY;
      if (!open) continue; // publishes stay pending (re-sent after a heal); acks are redelivered
      try {
        this.nc.publish(subject, data, opts);
      } catch (err) {
        if (opts) this.failed(guid, err);
      }
    }
  }
}
