// A subscription on JetStream: a pull consumer feeding the client's own subscription iterator
// (stan-ts's SubscriptionImpl), so the async-iterator, manual-ack and auto-ack semantics are
// the very code the STAN backend runs. This file is the other half: consumer creation by kind,
// delivery (stream sequence and exact timestamp from the ack subject), acks and the end.
import {
  type CallOptions,
  type DecodedMsg,
  ErrorCode,
  isStanError,
  Messages,
  type StanError,
  StanServerError,
  StanSubscriptionError,
  StanTimeoutError,
  withCancel,
} from "@stan-ts/core";
import {
  AckPolicy,
  type ConsumerConfig,
  ConsumerEvents,
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  nanos,
  ReplayPolicy,
} from "nats";
import type { StartAt, SubscriptionCore } from "stan-ts";
import { isNotFound, StanNotSupportedError } from "./errors.js";
import type { ConsumerKind } from "./names.js";

/** What the subscription feeds (stan-ts's SubscriptionImpl). */
export interface Sink {
  deliver(msg: DecodedMsg): void;
  end(error?: StanError): void;
}

/** The consumer a subscription runs on. */
export interface ConsumerPlan {
  readonly channel: string;
  readonly stream: string;
  readonly name: string;
  readonly kind: ConsumerKind;
  readonly maxInflight: number;
  /** ms */
  readonly ackWait: number;
  /** ms an ephemeral (plain or queue) consumer outlives its last pull. */
  readonly inactiveThreshold: number;
}

const UNSAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** The deliver policy of a STAN start position; `lastSeq` is the stream's last sequence. */
export function startConfig(startAt: StartAt, lastSeq: bigint): Partial<ConsumerConfig> {
  if (startAt === "new-only") return { deliver_policy: DeliverPolicy.New };
  if (startAt === "last-received") return { deliver_policy: DeliverPolicy.Last };
  if (startAt === "first") return { deliver_policy: DeliverPolicy.All };
  if ("sequence" in startAt) {
    let seq = BigInt(startAt.sequence);
    // STAN: above the last stored sequence means "new only", not "wait for that sequence"
    if (seq > lastSeq + 1n) seq = lastSeq + 1n;
    if (seq > UNSAFE) {
      throw new StanNotSupportedError(
        `stan: start sequence ${seq} is past 2^53: the JetStream client API takes it as a number`,
      );
    }
    return { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: Number(seq) };
  }
  const at = "time" in startAt ? startAt.time : new Date(Date.now() - startAt.ago);
  return { deliver_policy: DeliverPolicy.StartTime, opt_start_time: at.toISOString() };
}

/** The consumer configuration of a plan (the start position aside). */
export function consumerConfig(plan: ConsumerPlan): Partial<ConsumerConfig> {
  const durable = plan.kind === "durable" || plan.kind === "durable-queue";
  return {
    ...(durable
      ? { durable_name: plan.name }
      : { name: plan.name, inactive_threshold: nanos(plan.inactiveThreshold) }),
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(plan.ackWait),
    max_ack_pending: plan.maxInflight,
    max_deliver: -1,
    replay_policy: ReplayPolicy.Instant,
  };
}

/**
 * Finds the plan's consumer or creates it: a durable (or a queue group) that exists resumes
 * where it was, as in STAN, with the new ack wait and max in flight.
 */
export async function ensureConsumer(
  jsm: JetStreamManager,
  plan: ConsumerPlan,
  start: () => Promise<Partial<ConsumerConfig>>,
): Promise<void> {
  const config = consumerConfig(plan);
  if (plan.kind !== "plain") {
    const existing = await jsm.consumers.info(plan.stream, plan.name).catch((err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    });
    if (existing) {
      const c = existing.config;
      if (c.ack_wait !== config.ack_wait || c.max_ack_pending !== config.max_ack_pending) {
        await jsm.consumers.update(plan.stream, plan.name, {
          ack_wait: config.ack_wait as number,
          max_ack_pending: config.max_ack_pending as number,
        });
      }
      return;
    }
  }
  const full = { ...config, ...(await start()) };
  try {
    await jsm.consumers.add(plan.stream, full);
  } catch (err) {
    // another member of the group created it meanwhile: join it
    if (plan.kind === "plain") throw err;
    await jsm.consumers.info(plan.stream, plan.name).catch(() => {
      throw err;
    });
  }
}

/**
 * Reads the stream sequence, delivery count and exact nanosecond timestamp from the ack
 * subject (`$JS.ACK.[<domain>.<hash>.]<stream>.<consumer>.<count>.<sseq>.<dseq>.<ts>.<pending>`);
 * nats 2.x's `info` parses them into numbers, which lose nanoseconds past 2^53.
 */
export function decodeJsMsg(m: JsMsg, channel: string): DecodedMsg {
  const reply = (m as JsMsg & { reply?: string }).reply ?? "";
  const t = reply.split(".");
  const at = t.length === 9 ? 4 : 6;
  let count: number;
  let sequence: bigint;
  let timestamp: bigint;
  try {
    count = Number(t[at]);
    sequence = BigInt(t[at + 1] as string);
    timestamp = BigInt(t[at + 3] as string);
    if (!Number.isInteger(count)) throw new Error("no delivery count");
  } catch {
    const info = m.info;
    count = info.deliveryCount;
    sequence = BigInt(info.streamSequence);
    timestamp = BigInt(info.timestampNanos);
  }
  return {
    sequence,
    subject: channel,
    reply: "",
    data: m.data,
    timestamp,
    redelivered: count > 1,
    redeliveryCount: count - 1,
  };
}

function invalid(): StanSubscriptionError {
  return new StanSubscriptionError(ErrorCode.InvalidSubscription, Messages.invalidSubscription);
}

/** One live subscription's JetStream side: the `core` of stan-ts's SubscriptionImpl. */
export class JsSubscriptionCore implements SubscriptionCore {
  /** Delivered and not yet acked, by stream sequence (at most max_ack_pending of them). */
  private readonly unacked = new Map<bigint, JsMsg>();
  private messages: ConsumerMessages | undefined;
  private ended = false;

  constructor(
    readonly plan: ConsumerPlan,
    private readonly jsm: JetStreamManager,
    private readonly sink: Sink,
    private readonly onEnd: (core: JsSubscriptionCore) => void,
  ) {}

  /** Starts pulling: the server sends at most `maxInflight` unacked messages. */
  async start(js: JetStreamClient): Promise<void> {
    const consumer = await js.consumers.get(this.plan.stream, this.plan.name);
    this.messages = await consumer.consume({
      max_messages: Math.min(this.plan.maxInflight, 1024),
      // pulls expire after 5 s and the server heartbeats every 2.5 s meanwhile: a lost
      // server or consumer leader is noticed in seconds and the pull is made again
      expires: 5000,
      callback: (m) => this.onMessage(m),
    });
    void this.watch(this.messages);
  }

  private async watch(messages: ConsumerMessages): Promise<void> {
    try {
      for await (const s of await messages.status()) {
        const gone =
          s.type === ConsumerEvents.ConsumerDeleted ||
          s.type === ConsumerEvents.StreamNotFound ||
          (s.type === ConsumerEvents.ConsumerNotFound && (await this.missing()));
        if (gone) {
          this.fail(
            new StanSubscriptionError(
              ErrorCode.InvalidSubscription,
              `stan: subscription on "${this.plan.channel}" ended: its JetStream consumer ${this.plan.name} was deleted (${s.type})`,
            ),
          );
        }
      }
    } catch {
      // the iterator ended with the consumer
    }
  }

  /** True when the server says the consumer does not exist (not merely unreachable). */
  private missing(): Promise<boolean> {
    return this.jsm.consumers.info(this.plan.stream, this.plan.name).then(
      () => false,
      (err: unknown) => isNotFound(err),
    );
  }

  private onMessage(m: JsMsg): void {
    if (this.ended) return;
    const decoded = decodeJsMsg(m, this.plan.channel);
    this.unacked.set(decoded.sequence, m);
    this.sink.deliver(decoded);
  }

  ack(sequence: bigint): void {
    if (this.ended) throw invalid();
    const m = this.unacked.get(sequence);
    if (!m) return;
    this.unacked.delete(sequence);
    m.ack();
  }

  /**
   * close: stops pulling; a durable (or a queue group others may still pull from) stays.
   * unsubscribe: deletes the consumer too (a plain queue group's is left to expire when its
   * last member is gone, since other members may still use it).
   */
  async end(unsubscribe: boolean, opts?: CallOptions): Promise<void> {
    if (this.ended) throw invalid();
    this.ended = true;
    try {
      await this.messages?.close().catch(() => {});
      this.giveBack();
      const remove = this.plan.kind === "plain" || (unsubscribe && this.plan.kind !== "queue");
      if (remove) {
        const what = unsubscribe ? "unsubscribe" : "close";
        const work = this.jsm.consumers.delete(this.plan.stream, this.plan.name).catch((err) => {
          if (isNotFound(err)) return true;
          throw requestError(
            err,
            unsubscribe ? Messages.unsubscribeTimeout : Messages.closeTimeout,
          );
        });
        await withCancel(work, opts, what);
      }
    } finally {
      this.unacked.clear();
      this.sink.end();
      this.onEnd(this);
    }
  }

  /**
   * Naks what was delivered and not acked (handed out or still buffered), so that the next
   * subscriber of a durable or a queue group gets it at once, as STAN redelivers unacked
   * messages when a durable resumes, instead of after `ackWait`.
   */
  private giveBack(): void {
    for (const m of this.unacked.values()) {
      try {
        m.nak();
      } catch {
        // the connection is gone: the server redelivers after ack_wait
      }
    }
    this.unacked.clear();
  }

  /** Ends the subscription with `error` (connection lost, consumer deleted). */
  fail(error: StanError): void {
    if (this.ended) return;
    this.ended = true;
    void this.messages?.close().catch(() => {});
    this.unacked.clear();
    this.sink.end(error);
    this.onEnd(this);
  }
}

/** A failed JetStream API request as a typed error. */
export function requestError(err: unknown, timeoutText: string): StanError {
  if (isStanError(err)) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (code === "TIMEOUT" || code === "503") {
    return new StanTimeoutError(ErrorCode.RequestTimeout, timeoutText, { cause: err });
  }
  return new StanServerError(
    ErrorCode.ServerError,
    `stan: JetStream refused the request: ${(err as Error).message}`,
    { cause: err },
  );
}
