import {
  type DecodedMsg,
  ErrorCode,
  Messages,
  StanDecodeError,
  StanSubscriptionError,
} from "@stan-ts/core";

const utf8 = new TextDecoder();

/** The side of a subscription a message needs to acknowledge itself. */
export interface AckTarget {
  readonly manualAcks: boolean;
  /** @internal */
  ackSequence(sequence: bigint): void;
}

/**
 * A message delivered by a subscription.
 *
 * Sequences and nanosecond timestamps are `bigint`, exact past 2^53 as on the wire.
 */
export class Message {
  /** The channel the message was published on. */
  readonly subject: string;
  /** The message's sequence in its channel (exact, 64-bit). */
  readonly sequence: bigint;
  /** The payload, as published. */
  readonly data: Uint8Array;
  /** Server timestamp in nanoseconds since the Unix epoch (exact). */
  readonly timestampNanos: bigint;
  /** True when the server sent this message before and did not get its ack in time. */
  readonly redelivered: boolean;
  /** How many times the server redelivered it (0 on the first delivery; not persisted by the server). */
  readonly redeliveryCount: number;
  #target: AckTarget;
  #acked = false;

  /** @internal */
  constructor(m: DecodedMsg, target: AckTarget) {
    this.subject = m.subject;
    this.sequence = m.sequence;
    this.data = m.data;
    this.timestampNanos = m.timestamp;
    this.redelivered = m.redelivered;
    this.redeliveryCount = m.redeliveryCount;
    this.#target = target;
  }

  /** Server timestamp as a Date (millisecond precision; see {@link timestampNanos}). */
  get timestamp(): Date {
    return new Date(Number(this.timestampNanos / 1_000_000n));
  }

  /** The payload decoded as UTF-8. */
  string(): string {
    return utf8.decode(this.data);
  }

  /**
   * The payload parsed as JSON.
   * @throws StanDecodeError (code DECODE_FAILED, with the message's `subject` and `sequence`)
   * when the payload is not valid JSON.
   */
  json<T = unknown>(): T {
    try {
      return JSON.parse(this.string()) as T;
    } catch (err) {
      throw new StanDecodeError(
        this.subject,
        this.sequence,
        `stan: message ${this.sequence} on "${this.subject}" is not valid JSON (${(err as Error).message}): read it with msg.string() or msg.data`,
        { cause: err },
      );
    }
  }

  /** True once acknowledged through this SDK. */
  get acked(): boolean {
    return this.#acked;
  }

  /**
   * Acknowledges the message (subscriptions with `manualAcks: true`). A second call does
   * nothing. During a heal, a durable's ack is kept and sent once its subscription is
   * re-created (the server keeps a durable's unacknowledged messages across sessions, and a
   * redelivery of this one is then not handed out again); a non-durable's old registration
   * is gone with the lost session, so there is nothing left to acknowledge (it is not
   * redelivered either).
   * @throws StanSubscriptionError `stan: cannot manually ack in auto-ack mode` on an auto-ack
   * subscription, `stan: invalid subscription` once the subscription is closed.
   */
  ack(): void {
    if (!this.#target.manualAcks) {
      throw new StanSubscriptionError(ErrorCode.ManualAckInAutoAckMode, Messages.manualAck);
    }
    this.ackInternal();
  }

  /** @internal */
  ackInternal(): void {
    if (this.#acked) return;
    this.#target.ackSequence(this.sequence);
    this.#acked = true;
  }

  /** @internal */
  belongsTo(target: AckTarget): boolean {
    return this.#target === target;
  }
}
