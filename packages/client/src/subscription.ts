import {
  type CallOptions,
  type DecodedMsg,
  ErrorCode,
  Messages,
  type StanError,
  StanSubscriptionError,
  type SubscriptionSink,
} from "@stan-ts/core";
import PQueue from "p-queue";
import { type AckTarget, Message } from "./message.js";

/**
 * A NATS Streaming subscription: a single-consumer async iterable of {@link Message}s.
 *
 * Pulling is demand: in auto-ack mode the message handed out by the iterator is acknowledged
 * when the loop asks for the next one (its body finished); a body that throws leaves it
 * unacknowledged so the server redelivers it. Leaving the loop closes the subscription as
 * {@link Subscription.close} does (a durable keeps its position).
 *
 * @example
 * ```ts
 * const sub = await sc.subscribe("orders", { startAt: "first" });
 * for await (const msg of sub) {
 *   console.log(msg.sequence, msg.string());
 * }
 * ```
 */
export interface Subscription extends AsyncIterable<Message>, AsyncDisposable {
  /** The channel. */
  readonly subject: string;
  /** The queue group, if any. */
  readonly queue: string | undefined;
  /** The durable name, if any. */
  readonly durableName: string | undefined;
  /** True when the application acknowledges messages itself. */
  readonly manualAcks: boolean;
  /** Messages received and not yet handed to the consumer (at most `maxInflight`). */
  readonly pending: number;
  /** Messages handed to the consumer so far. */
  readonly delivered: number;
  /** True once closed, unsubscribed, or ended by the connection. */
  readonly isClosed: boolean;
  /**
   * Resolves when the subscription ends: with `undefined` after close/unsubscribe, or with
   * the error that ended it. Never rejects.
   */
  readonly closed: Promise<StanError | undefined>;
  /** Acknowledges a message of this subscription (manual-ack mode); same as `msg.ack()`. */
  ack(msg: Message): void;
  /** Stops delivery; a durable keeps its position on the server. Idempotent. */
  close(opts?: CallOptions): Promise<void>;
  /** Stops delivery and deletes the durable's state on the server. */
  unsubscribe(opts?: CallOptions): Promise<void>;
}

/**
 * @internal What a {@link SubscriptionImpl} asks of the backend that feeds it: the STAN
 * session's `CoreSubscription`, or another backend's (the JetStream one).
 */
export interface SubscriptionCore {
  /** Acknowledges the message with this sequence; throws once the subscription ended. */
  ack(sequence: bigint): void;
  /** Ends the subscription: close (a durable keeps its position) or unsubscribe (deleted). */
  end(unsubscribe: boolean, opts?: CallOptions): Promise<void>;
}

/** Callback-mode settings. */
export interface CallbackOptions {
  callback: (msg: Message) => void | Promise<void>;
  concurrency: number;
  onError: ((err: unknown, msg: Message) => void) | undefined;
}

/** @internal */
export class SubscriptionImpl implements Subscription, SubscriptionSink, AckTarget {
  readonly subject: string;
  readonly queue: string | undefined;
  readonly durableName: string | undefined;
  readonly manualAcks: boolean;
  delivered = 0;
  core: SubscriptionCore | undefined;
  readonly closed: Promise<StanError | undefined>;
  private resolveClosed!: (e: StanError | undefined) => void;
  /** Received, not yet handed out (made into Messages when handed out). */
  private buffer: DecodedMsg[] = [];
  private head = 0;
  /** Pending next() calls, oldest first (normally at most one). */
  private waiters: Array<{
    resolve: (r: IteratorResult<Message>) => void;
    reject: (e: unknown) => void;
  }> = [];
  private iterating = false;
  /** Handed out by the iterator in auto-ack mode, acked at the next `next()` (several when `next()` calls overlap). */
  private lastAuto: Message[] = [];
  /** Buffered messages by sequence: their position counted from the first ever buffered. */
  private readonly positions = new Map<bigint, number>();
  /** Position of `buffer[0]` in that count. */
  private base = 0;
  private ended = false;
  private endError: StanError | undefined;
  private errorThrown = false;
  private closing: Promise<void> | undefined;

  constructor(
    subject: string,
    queue: string | undefined,
    durableName: string | undefined,
    manualAcks: boolean,
  ) {
    this.subject = subject;
    this.queue = queue;
    this.durableName = durableName;
    this.manualAcks = manualAcks;
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
  }

  get pending(): number {
    return this.buffer.length - this.head;
  }

  get isClosed(): boolean {
    return this.ended;
  }

  // ------------------------------------------------------------ sink (from the engine)

  deliver(m: DecodedMsg): void {
    if (this.ended) return;
    if (m.redelivered) {
      // A redelivery of a message still in the buffer replaces it: the buffer stays bounded.
      // Found through an index by sequence (a scan per redelivery was quadratic).
      const at = this.positions.get(m.sequence);
      if (at !== undefined && at - this.base >= this.head) {
        this.buffer[at - this.base] = m;
        return;
      }
    }
    const w = this.waiters.shift();
    if (w) {
      w.resolve(this.handOut(new Message(m, this)));
    } else {
      this.positions.set(m.sequence, this.base + this.buffer.length);
      this.buffer.push(m);
    }
  }

  rewind(): DecodedMsg[] {
    const taken = this.buffer.slice(this.head);
    this.buffer = [];
    this.base += this.head + taken.length;
    this.head = 0;
    this.positions.clear();
    return taken;
  }

  end(error?: StanError): void {
    if (this.ended) return;
    this.ended = true;
    this.endError = error;
    this.buffer = [];
    this.head = 0;
    this.positions.clear();
    for (const w of this.waiters.splice(0)) {
      if (error && !this.errorThrown) {
        this.errorThrown = true;
        w.reject(error);
      } else w.resolve({ value: undefined, done: true });
    }
    this.resolveClosed(error);
  }

  ackSequence(sequence: bigint): void {
    if (this.ended || !this.core) {
      throw new StanSubscriptionError(ErrorCode.InvalidSubscription, Messages.invalidSubscription);
    }
    this.core.ack(sequence);
  }

  // ------------------------------------------------------------ consumer side

  ack(msg: Message): void {
    if (!msg.belongsTo(this)) {
      throw new StanSubscriptionError(
        ErrorCode.InvalidSubscription,
        "stan: invalid subscription: the message belongs to another subscription",
      );
    }
    msg.ack();
  }

  private handOut(msg: Message): IteratorResult<Message> {
    this.delivered++;
    if (!this.manualAcks) this.lastAuto.push(msg);
    return { value: msg, done: false };
  }

  /** Next message, or done; throws the error that ended the subscription once. */
  pull(): Promise<IteratorResult<Message>> {
    if (this.lastAuto.length > 0) {
      const prevs = this.lastAuto;
      this.lastAuto = [];
      if (!this.ended) {
        for (const prev of prevs) {
          try {
            prev.ackInternal();
          } catch {
            // the subscription ended meanwhile: the server redelivers
          }
        }
      }
    }
    if (this.head < this.buffer.length) {
      const m = this.buffer[this.head] as DecodedMsg;
      if (this.positions.get(m.sequence) === this.base + this.head) {
        this.positions.delete(m.sequence);
      }
      this.buffer[this.head++] = undefined as unknown as DecodedMsg;
      if (this.head > 1024 && this.head * 2 > this.buffer.length) {
        this.buffer = this.buffer.slice(this.head);
        this.base += this.head;
        this.head = 0;
      }
      return Promise.resolve(this.handOut(new Message(m, this)));
    }
    if (this.ended) {
      if (this.endError && !this.errorThrown) {
        this.errorThrown = true;
        return Promise.reject(this.endError);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<Message> {
    // A finished subscription can be iterated again: the loop just ends.
    if (this.iterating && !(this.ended && this.head >= this.buffer.length)) {
      throw new StanSubscriptionError(
        ErrorCode.AlreadyIterating,
        `stan: subscription on "${this.subject}" is already being iterated: a subscription has a single consumer`,
      );
    }
    this.iterating = true;
    const leave = async (): Promise<IteratorResult<Message>> => {
      // Leaving the loop: the last message is not acked (its body may have thrown).
      this.lastAuto = [];
      await this.close().catch(() => {});
      return { value: undefined, done: true };
    };
    // `throw` too, so that `yield*` delegation can end it (as `return` does)
    return { next: () => this.pull(), return: leave, throw: leave };
  }

  /** @internal Consumes the subscription with a callback, in order or with bounded concurrency. */
  runCallback(cb: CallbackOptions, report: (err: unknown, msg: Message) => void): void {
    this.iterating = true;
    const queue = new PQueue({ concurrency: cb.concurrency });
    const handle = async (msg: Message) => {
      try {
        await cb.callback(msg);
      } catch (err) {
        (cb.onError ?? report)(err, msg);
        return; // not acked: redelivered after ackWait
      }
      if (!this.manualAcks && !this.ended) {
        try {
          msg.ackInternal();
        } catch {
          // ended meanwhile
        }
      }
    };
    const loop = async () => {
      for (;;) {
        let r: IteratorResult<Message>;
        try {
          r = await this.pullRaw();
        } catch {
          break; // the error is visible through `closed`
        }
        if (r.done) break;
        queue.add(() => handle(r.value));
        await queue.onSizeLessThan(1);
      }
      await queue.onIdle();
    };
    void loop();
  }

  private pullRaw(): Promise<IteratorResult<Message>> {
    this.lastAuto = [];
    return this.pull().then((r) => {
      this.lastAuto = [];
      return r;
    });
  }

  close(opts?: CallOptions): Promise<void> {
    return this.finish(false, opts);
  }

  unsubscribe(opts?: CallOptions): Promise<void> {
    return this.finish(true, opts);
  }

  private finish(unsubscribe: boolean, opts?: CallOptions): Promise<void> {
    if (this.closing) {
      return unsubscribe
        ? this.closing.then(() => {
            throw this.invalid();
          })
        : this.closing;
    }
    if (this.ended || !this.core) {
      return unsubscribe ? Promise.reject(this.invalid()) : Promise.resolve();
    }
    this.closing = this.core.end(unsubscribe, opts);
    return this.closing;
  }

  private invalid(): StanSubscriptionError {
    return new StanSubscriptionError(ErrorCode.InvalidSubscription, Messages.invalidSubscription);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close().catch(() => {});
  }
}
