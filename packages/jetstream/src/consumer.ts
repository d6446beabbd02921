// A subscription on JetStream: a pull consumer feeding the client's own subscription iterator
// (stan-ts's SubscriptionImpl), so the async-iterator, manual-ack and auto-ack semantics are
// the very code the STAN backend runs. This file is the other half: consumer creation by kind,
// delivery (stream sequence and exact timestamp from the ack subject), acks and the end; the
// pull requests themselves are puller.ts's.
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
  DeliverPolicy,
  type JetStreamManager,
  type Msg,
  type NatsConnection,
  nanos,
  ReplayPolicy,
} from "nats";
import type { StartAt, SubscriptionCore } from "stan-ts";
import { isNotFound, StanNotSupportedError } from "./errors.js";
import type { ConsumerKind } from "./names.js";
import { Puller } from "./puller.js";

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
 * subject (`$JS.ACK.[<domain>.<hash>.]<stream>.<consumer>.<count>.<sseq>.<dseq>.<ts>.<pending>`),
 * exact past 2^53 where nats 2.x's `info` parses numbers.
 */
export function decodeJsMsg(m: Pick<Msg, "reply" | "data">, channel: string): DecodedMsg {
  const t = (m.reply ?? "").split(".");
  const at = t.length === 9 ? 4 : 6;
  const count = Number(t[at]);
  let sequence = 0n;
  let timestamp = 0n;
  try {
    sequence = BigInt(t[at + 1] as string);
    timestamp = BigInt(t[at + 3] as string);
  } catch {
    // not an ack subject: sequence 0 is refused by the caller
  }
  return {
    sequence,
    subject: channel,
    reply: "",
    data: m.data,
    timestamp,
    redelivered: count > 1,
    redeliveryCount: Number.isInteger(count) && count > 0 ? count - 1 : 0,
  };
}

function invalid(): StanSubscriptionError {
  return new StanSubscriptionError(ErrorCode.InvalidSubscription, Messages.invalidSubscription);
}

const ACK = new TextEncoder().encode("+ACK");
const NAK = new TextEncoder().encode("-NAK");

/** One live subscription's JetStream side: the `core` of stan-ts's SubscriptionImpl. */
export class JsSubscriptionCore implements SubscriptionCore {
  /** Delivered and not yet acked: ack subjects by stream sequence (at most max_ack_pending). */
  private readonly unacked = new Map<bigint, string>();
  private puller: Puller | undefined;
  /** No more acks or deliveries to the application (closing, closed or failed). */
  private ended = false;
  /** Fully over: what still arrives is not even recorded. */
  private over = false;

  constructor(
    readonly plan: ConsumerPlan,
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly sink: Sink,
    private readonly onEnd: (core: JsSubscriptionCore) => void,
  ) {}

  /** Starts pulling: batches of at most `maxInflight`, the server holding back past it. */
  start(): void {
    this.puller = new Puller(
      this.nc,
      this.plan.stream,
      this.plan.name,
      Math.min(this.plan.maxInflight, 1024),
      (m) => this.onMessage(m),
      (s) => void this.onStatus(s),
    );
    this.puller.start();
  }

  /** After a NATS reconnect: ask again (the request may have died with the old server). */
  renew(): void {
    this.puller?.renew();
  }

  private async onStatus(s: { code: number; description: string }): Promise<void> {
    if (this.ended) return;
    const deleted = s.code === 409 && /consumer (is )?deleted/i.test(s.description);
    // no responders: the consumer may be gone, or its leader not elected yet
    if (deleted || (s.code === 503 && (await this.missing()))) {
      this.fail(
        new StanSubscriptionError(
          ErrorCode.InvalidSubscription,
          `stan: subscription on "${this.plan.channel}" ended: its JetStream consumer ${this.plan.name} was deleted`,
        ),
      );
    }
  }

  /** True when the server says the consumer does not exist (not merely unreachable). */
  private missing(): Promise<boolean> {
    return this.jsm.consumers.info(this.plan.stream, this.plan.name).then(
      () => false,
      (err: unknown) => isNotFound(err),
    );
  }

  private onMessage(m: Msg): void {
    if (this.over) return;
    const decoded = decodeJsMsg(m, this.plan.channel);
    if (decoded.sequence === 0n) return;
    this.unacked.set(decoded.sequence, m.reply as string);
    if (!this.ended) this.sink.deliver(decoded);
  }

  ack(sequence: bigint): void {
    if (this.ended) throw invalid();
    const reply = this.unacked.get(sequence);
    if (reply === undefined) return;
    this.unacked.delete(sequence);
    this.nc.publish(reply, ACK);
  }

  /**
   * close: stops pulling; a durable (or a queue group others may still pull from) stays.
   * unsubscribe: deletes the consumer too (a plain queue group's is left to expire when its
   * last member is gone, since other members may still use it).
   */
  async end(unsubscribe: boolean, opts?: CallOptions): Promise<void> {
    if (this.ended) throw invalid();
    this.ended = true;
    const remove = this.plan.kind === "plain" || (unsubscribe && this.plan.kind !== "queue");
    try {
      // A kept consumer: wait for our pull request to end, so nothing more goes to it.
      await this.puller?.stop(!remove);
      this.over = true;
      if (!remove) this.giveBack();
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
      this.over = true;
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
    for (const reply of this.unacked.values()) {
      try {
        this.nc.publish(reply, NAK);
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
    this.over = true;
    void this.puller?.stop(false);
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
