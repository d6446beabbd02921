// The StanConnection of the JetStream backend: channels as streams, publish with a PubAck and
// Nats-Msg-Id = guid (re-sends deduplicated), subscriptions as pull consumers (consumer.ts).
import {
  type BatchOutcome,
  type CallOptions,
  ErrorCode,
  isStanError,
  Messages,
  type NatsConnectionLike,
  nuid,
  type SentPublish,
  StanArgumentError,
  StanConnectionError,
  type StanError,
  StanServerError,
  StanSubscriptionError,
  StanTimeoutError,
  validateSubject,
  withCancel,
} from "@stan-ts/core";
import {
  DiscardPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type NatsConnection,
  nanos,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from "nats";
import {
  type ConnectOptions,
  type Payload,
  resolveSubscribeOptions,
  type StanConnection,
  type Status,
  type SubscribeOptions,
  type Subscription,
  SubscriptionImpl,
  toBytes,
} from "stan-ts";
import { ensureConsumer, JsSubscriptionCore, requestError, startConfig } from "./consumer.js";
import { isNotFound } from "./errors.js";
import { type ConsumerKind, consumerName, streamName } from "./names.js";
import type { ChannelLimits, ResolvedBackendOptions } from "./options.js";
import { PublishWindow } from "./window.js";

/** Status events kept for a slow reader of `status()` (older ones are dropped). */
const STATUS_BUFFER = 1024;
/** ms between re-sends of an unanswered publish (same Nats-Msg-Id: stored once). */
const RESEND_AFTER = 2000;

/** The StanConnection of {@link jetstream}: one per `connect()`. */
export class JetStreamConnection implements StanConnection {
  readonly clusterId: string;
  readonly clientId: string;
  readonly closed: Promise<StanError | undefined>;
  private resolveClosed!: (e: StanError | undefined) => void;
  private readonly window: PublishWindow;
  private readonly streams = new Map<string, Promise<string>>();
  private readonly subs = new Set<JsSubscriptionCore>();
  /** Durables whose subscribe is under way (stream NUL consumer), for the duplicate check. */
  private readonly registering = new Set<string>();
  private readonly listeners = new Set<(s: Status | undefined) => void>();
  private state: "open" | "closing" | "ended" = "open";
  private disconnected = false;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly natsConn: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly options: ConnectOptions,
    private readonly backend: ResolvedBackendOptions,
    private readonly owns: boolean,
    private readonly timeouts: { request: number; pubAck: number; window: number },
  ) {
    this.clusterId = options.clusterId;
    this.clientId = options.clientId;
    this.window = new PublishWindow(timeouts.window);
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    void this.watchNats();
  }

  get nc(): NatsConnectionLike {
    return this.natsConn as unknown as NatsConnectionLike;
  }
  get isOpen(): boolean {
    return this.state === "open";
  }
  /** True from a NATS disconnect until the NATS client has reconnected. */
  get isReconnecting(): boolean {
    return this.disconnected && this.state === "open";
  }
  get pendingPublishes(): number {
    return this.window.inflight;
  }

  // ------------------------------------------------------------------ channels

  /** The channel's stream, created with the channel limits the first time it is used. */
  private stream(channel: string): Promise<string> {
    let known = this.streams.get(channel);
    if (!known) {
      known = this.createStream(channel);
      this.streams.set(channel, known);
      known.catch(() => this.streams.delete(channel)); // the next use tries again
    }
    return known;
  }

  private async createStream(channel: string): Promise<string> {
    const name = streamName(channel, this.backend.streamPrefix);
    try {
      const info = await this.jsm.streams.info(name);
      if (!info.config.subjects?.includes(channel)) {
        throw new StanServerError(
          ErrorCode.ServerError,
          `stan: stream ${name} exists but does not hold subject "${channel}" (it holds ${JSON.stringify(info.config.subjects)}): remove it or choose another streamPrefix`,
        );
      }
      return name;
    } catch (err) {
      if (!isNotFound(err)) throw requestError(err, Messages.subscribeTimeout);
    }
    try {
      await this.jsm.streams.add(this.streamConfig(name, channel));
    } catch (err) {
      // another client created it meanwhile
      const exists = await this.jsm.streams.info(name).then(
        () => true,
        () => false,
      );
      if (!exists) throw requestError(err, Messages.subscribeTimeout);
    }
    return name;
  }

  private streamConfig(name: string, channel: string): Partial<StreamConfig> {
    const l: ChannelLimits = { ...this.backend.limits, ...this.backend.channels[channel] };
    return {
      name,
      subjects: [channel],
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      storage: this.backend.storage === "memory" ? StorageType.Memory : StorageType.File,
      num_replicas: this.backend.replicas,
      // JetStream refuses a duplicate window longer than max age
      duplicate_window: nanos(Math.min(this.backend.duplicateWindow, l.maxAge || Infinity)),
      max_msgs: l.maxMsgs ?? -1,
      max_bytes: l.maxBytes ?? -1,
      max_age: l.maxAge ? nanos(l.maxAge) : 0,
    };
  }

  // ------------------------------------------------------------------ publish

  publish(subject: string, data: Payload, opts?: CallOptions): Promise<string> {
    return this.publishAsync(subject, data, opts).then((s) => s.acked);
  }

  async publishAsync(subject: string, data: Payload, opts?: CallOptions): Promise<SentPublish> {
    const bytes = this.check(subject, data);
    await this.window.acquire(opts);
    const guid = nuid.next();
    const acked = this.store(subject, bytes, guid, opts).finally(() => this.window.release());
    acked.catch(() => {}); // a pipelined caller may ignore it
    return { guid, acked };
  }

  async publishBatch(
    subject: string,
    messages: Iterable<Payload>,
    opts?: CallOptions,
  ): Promise<BatchOutcome> {
    const datas: Uint8Array[] = [];
    for (const m of messages) datas.push(this.check(subject, m));
    const guids = new Array<string>(datas.length).fill("");
    const failures: Array<{ index: number; error: StanError }> = [];
    const acks: Promise<void>[] = [];
    for (let i = 0; i < datas.length; i++) {
      const index = i;
      try {
        await this.window.acquire(opts);
      } catch (err) {
        failures.push({ index, error: err as StanError });
        continue;
      }
      const guid = nuid.next();
      guids[index] = guid;
      acks.push(
        this.store(subject, datas[index] as Uint8Array, guid, opts)
          .then(
            () => {},
            (error: StanError) => {
              failures.push({ index, error });
            },
          )
          .finally(() => this.window.release()),
      );
    }
    await Promise.all(acks);
    failures.sort((a, b) => a.index - b.index);
    return { guids, failures };
  }

  private check(subject: string, data: Payload): Uint8Array {
    if (this.state !== "open") {
      throw new StanConnectionError(ErrorCode.ConnectionClosed, Messages.connectionClosed);
    }
    validateSubject(subject);
    const bytes = toBytes(data);
    const max = this.natsConn.info?.max_payload;
    // the headers travel in the same NATS message: NATS/1.0, Nats-Msg-Id, Nats-Expected-Stream
    const headers = 12 + 37 + 24 + streamName(subject, this.backend.streamPrefix).length;
    if (max !== undefined && bytes.length + headers > max) {
      throw new StanArgumentError(
        ErrorCode.MaxPayloadExceeded,
        `stan: message of ${bytes.length} bytes (+ ${headers} bytes of JetStream headers) exceeds the server's max_payload of ${max} bytes`,
      );
    }
    return bytes;
  }

  /**
   * Publishes until the stream's PubAck or `pubAckTimeout`. An unanswered attempt (server
   * gone, NATS reconnecting, no JetStream leader yet) is sent again with the same
   * Nats-Msg-Id, so the stream stores it once (within its duplicate window).
   */
  private async store(
    subject: string,
    data: Uint8Array,
    guid: string,
    opts: CallOptions | undefined,
  ): Promise<string> {
    const deadline = Date.now() + this.timeouts.pubAck;
    const timeoutError = new StanTimeoutError(ErrorCode.PubAckTimeout, Messages.pubAckTimeout);
    const work = (async () => {
      const stream = await this.stream(subject);
      for (;;) {
        this.assertOpen();
        const left = deadline - Date.now();
        if (left <= 0) throw timeoutError;
        try {
          await this.js.publish(subject, data, {
            msgID: guid,
            expect: { streamName: stream },
            timeout: Math.min(left, RESEND_AFTER),
          });
          return guid;
        } catch (err) {
          const code = (err as { code?: unknown }).code;
          const transient = code === "TIMEOUT" || code === "503" || code === "DISCONNECT";
          if (!transient || this.state !== "open") throw this.publishError(err);
          if (code === "503") await new Promise((r) => setTimeout(r, 100));
        }
      }
    })();
    return withCancel(work, opts, "publish");
  }

  private publishError(err: unknown): StanError {
    if (isStanError(err)) return err;
    if (this.state !== "open") {
      return new StanConnectionError(ErrorCode.ConnectionClosed, Messages.connectionClosed, {
        cause: err,
      });
    }
    return new StanServerError(
      ErrorCode.ServerError,
      `stan: JetStream refused the publish: ${(err as Error).message}`,
      { cause: err },
    );
  }

  private assertOpen(): void {
    if (this.state !== "open") {
      throw new StanConnectionError(ErrorCode.ConnectionClosed, Messages.connectionClosed);
    }
  }

  // ------------------------------------------------------------------ subscribe

  async subscribe(subject: string, opts: SubscribeOptions = {}): Promise<Subscription> {
    const params = resolveSubscribeOptions(subject, opts);
    this.assertOpen();
    const { queue, durableName } = params;
    const kind: ConsumerKind = durableName
      ? queue
        ? "durable-queue"
        : "durable"
      : queue
        ? "queue"
        : "plain";
    // A subscribe the caller gave up on (signal, timeout) stops at its next step and leaves
    // nothing live: no pulling consumer, no registered durable.
    let abandoned = false;
    let key: string | undefined;
    const gaveUp = () => new StanSubscriptionError(ErrorCode.Aborted, "stan: subscribe abandoned");
    const work = (async () => {
      const stream = await this.stream(subject);
      const plan = {
        channel: subject,
        stream,
        kind,
        name: consumerName(kind, this.clientId, durableName, queue, nuid.next()),
        maxInflight: params.maxInflight,
        ackWait: opts.ackWait ?? 30_000,
        inactiveThreshold: this.backend.inactiveThreshold,
      };
      if (abandoned) throw gaveUp();
      if (kind === "durable") {
        key = `${stream}\0${plan.name}`;
        const live = [...this.subs].some(
          (s) => s.plan.stream === stream && s.plan.name === plan.name,
        );
        if (live || this.registering.has(key)) {
          key = undefined;
          throw new StanServerError(ErrorCode.ServerError, "stan: duplicate durable registration");
        }
        this.registering.add(key);
      }
      const start = async () => {
        const startAt = opts.startAt ?? "new-only";
        let last = 0n;
        if (typeof startAt === "object" && "sequence" in startAt) {
          last = BigInt((await this.jsm.streams.info(stream)).state.last_seq);
        }
        return startConfig(startAt, last);
      };
      try {
        await ensureConsumer(this.jsm, plan, start);
      } catch (err) {
        throw requestError(err, Messages.subscribeTimeout);
      } finally {
        // once abandoned, the key was released then (and may be another subscribe's by now)
        if (key && !abandoned) this.registering.delete(key);
      }
      if (abandoned) {
        if (kind === "plain") await this.jsm.consumers.delete(stream, plan.name).catch(() => {});
        throw gaveUp();
      }
      const sub = new SubscriptionImpl(subject, queue, durableName, !!opts.manualAcks);
      const core = new JsSubscriptionCore(plan, this.natsConn, this.jsm, sub, (c) =>
        this.subs.delete(c),
      );
      sub.core = core;
      this.subs.add(core);
      core.start();
      if (abandoned) {
        await sub.close().catch(() => {});
        throw gaveUp();
      }
      return sub;
    })();
    work.catch(() => {}); // after a lost race no one awaits it
    const sub = await withCancel(work, opts, "subscribe", () => {
      abandoned = true;
      if (key) this.registering.delete(key);
    });
    if (opts.callback) {
      sub.runCallback(
        { callback: opts.callback, concurrency: opts.concurrency ?? 1, onError: opts.onError },
        (error, msg) =>
          this.emit({ type: "callback-error", error, subject, sequence: msg.sequence }),
      );
    }
    return sub;
  }

  // ------------------------------------------------------------------ status and close

  private emit(s: Status): void {
    for (const l of this.listeners) l(s);
  }

  /** NATS connection events as session events; the connection's end as `connection-lost`. */
  private async watchNats(): Promise<void> {
    const nc = this.natsConn;
    void nc.closed().then(() => {
      if (this.state === "open") {
        this.end(
          new StanConnectionError(
            ErrorCode.ConnectionLost,
            "stan: connection lost: the NATS connection was closed",
          ),
        );
      }
    });
    let attempt = 0;
    for await (const s of nc.status()) {
      if (this.state === "ended") break;
      if (s.type === "disconnect") {
        this.disconnected = true;
        this.emit({
          type: "disconnected",
          error: new StanConnectionError(
            ErrorCode.ConnectionLost,
            `stan: disconnected from NATS at ${String(s.data)}; reconnecting`,
          ),
        });
      } else if (s.type === "reconnecting") {
        this.emit({ type: "reconnecting", attempt: ++attempt, delay: 0 });
      } else if (s.type === "reconnect") {
        this.disconnected = false;
        for (const sub of this.subs) sub.renew();
        this.emit({ type: "reconnected", attempts: attempt });
        attempt = 0;
      }
    }
  }

  private end(error: StanConnectionError | undefined): void {
    if (this.state === "ended") return;
    this.state = "ended";
    this.window.close(error);
    for (const s of [...this.subs]) {
      s.fail(
        error ?? new StanConnectionError(ErrorCode.ConnectionClosed, Messages.connectionClosed),
      );
    }
    if (error) {
      this.emit({ type: "connection-lost", error });
      try {
        this.options.onConnectionLost?.(error);
      } catch {
        // the hook's own failure
      }
    } else this.emit({ type: "closed" });
    for (const l of this.listeners) l(undefined);
    this.listeners.clear();
    this.resolveClosed(error);
  }

  status(): AsyncIterable<Status> {
    const queue: Status[] = [];
    let wake: (() => void) | undefined;
    let done = this.state === "ended";
    const listener = (s: Status | undefined) => {
      if (s === undefined) done = true;
      else {
        if (queue.length >= STATUS_BUFFER) queue.shift();
        queue.push(s);
      }
      wake?.();
      wake = undefined;
    };
    if (!done) this.listeners.add(listener);
    const listeners = this.listeners;
    return {
      async *[Symbol.asyncIterator]() {
        try {
          for (;;) {
            while (queue.length > 0) yield queue.shift() as Status;
            if (done) return;
            await new Promise<void>((r) => {
              wake = r;
            });
          }
        } finally {
          listeners.delete(listener);
        }
      },
    };
  }

  /**
   * Closes: stops every subscription (plain ones' consumers are deleted, durables and queue
   * groups kept), rejects waiting publishes with `stan: connection closed`, and closes the NATS
   * connection if this backend opened it. Idempotent.
   */
  close(opts?: CallOptions): Promise<void> {
    if (!this.closing) {
      this.state = this.state === "open" ? "closing" : this.state;
      this.window.close();
      this.closing = (async () => {
        const ends = [...this.subs].map((s) => s.end(false).catch(() => {}));
        await Promise.all(ends);
        if (this.owns && !this.natsConn.isClosed()) await this.natsConn.close().catch(() => {});
        this.end(undefined);
      })();
    }
    return withCancel(this.closing, opts, "close");
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close().catch(() => {});
  }
}
