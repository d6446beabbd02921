/**
 * The JetStream side of `stan migrate`: the stream-naming rule, the migration headers, opening
 * or creating the target stream, reading where a migration stopped, and re-reading a stream's
 * migrated messages into a {@link MessageDigest} for the final check.
 */

import { createHash } from "node:crypto";
import { streamName } from "@stan-ts/jetstream";
import {
  connect,
  createInbox,
  headers,
  type JetStreamClient,
  type JetStreamManager,
  type Msg,
  type NatsConnection,
  StorageType,
  type StreamInfo,
  type Subscription,
} from "nats";
import { CliError } from "./io.js";

/** Header holding a migrated message's STAN sequence (decimal). */
export const SEQUENCE_HEADER = "Stan-Sequence";
/** Header holding a migrated message's STAN timestamp: nanoseconds since the Unix epoch (decimal). */
export const TIMESTAMP_HEADER = "Stan-Timestamp";

/**
 * The default stream of a channel: the JetStream backend's own rule (`streamName` of
 * `@stan-ts/jetstream`, one stream per channel), so a migrated channel is where the backend
 * looks for it: ASCII letters, digits and `-` are kept, every other UTF-8 byte becomes `_` and
 * two upper-case hex digits (`orders` → `orders`, `orders.eu` → `orders_2Eeu`).
 */
export function streamNameFor(channel: string): string {
  return streamName(channel);
}

/** Why `name` cannot be a stream name, or undefined when it can. */
export function invalidStreamName(name: string): string | undefined {
  if (name.length === 0) return "it is empty";
  if (/[\s.*>/\\]/.test(name))
    return "stream names cannot hold '.', '*', '>', '/', '\\' or whitespace";
  if (name.length > 255) return "it is longer than 255 characters";
  return undefined;
}

/** The `Nats-Msg-Id` of a migrated message: `<channel>:<sequence>`, the same on every attempt. */
export function messageId(channel: string, sequence: bigint): string {
  return `${channel}:${sequence}`;
}

/**
 * Count, sequence range, order and SHA-256 of a side's messages: for each message in order,
 * its sequence and timestamp (nanoseconds) as 8-byte big-endian integers, its payload's length
 * as a 4-byte big-endian integer, then the payload. Sequences that do not follow one another
 * (a gap, a duplicate, out of order) are recorded as problems.
 */
export class MessageDigest {
  /** Messages added. */
  count = 0;
  /** Sequence of the first message added. */
  first: bigint | undefined;
  /** Sequence of the last message added. */
  last: bigint | undefined;
  /** The first few places where a sequence did not follow the one before. */
  readonly problems: string[] = [];
  private breaks = 0;
  private readonly hash = createHash("sha256");
  private readonly head = Buffer.alloc(20);

  /** Adds the next message. */
  add(sequence: bigint, timestampNanos: bigint, data: Uint8Array): void {
    if (this.last !== undefined && sequence !== this.last + 1n) {
      if (++this.breaks <= 5) {
        const what = sequence <= this.last ? "a duplicate or out of order" : "a gap";
        this.problems.push(`sequence ${sequence} follows ${this.last} (${what})`);
      }
    }
    this.first ??= sequence;
    this.last = sequence;
    this.count++;
    this.head.writeBigUInt64BE(sequence, 0);
    this.head.writeBigUInt64BE(timestampNanos, 8);
    this.head.writeUInt32BE(data.length, 16);
    this.hash.update(this.head);
    this.hash.update(data);
  }

  /** Sequences that did not follow the one before (all of them, beyond the first few kept). */
  get breakCount(): number {
    return this.breaks;
  }

  /** The SHA-256 in hex (call once, after the last {@link add}). */
  hex(): string {
    return this.hash.digest("hex");
  }

  /** `n messages, sequences a..b` (or `no messages`). */
  describe(): string {
    if (this.count === 0) return "no messages";
    return `${this.count.toLocaleString("en-US")} messages, sequences ${this.first}..${this.last}`;
  }
}

/** A JetStream connection: the NATS connection and its JetStream manager and client. */
export interface JetStreamTarget {
  nc: NatsConnection;
  jsm: JetStreamManager;
  js: JetStreamClient;
  /** Where it connected. */
  servers: string[];
}

function apiCode(err: unknown): number | undefined {
  return (err as { api_error?: { err_code?: number } } | undefined)?.api_error?.err_code;
}

/** JetStream API error codes this module tells apart. */
const STREAM_NOT_FOUND = 10059;
const NO_MESSAGE_FOUND = 10037;

/** Connects to the JetStream server, with actionable errors when it is absent or has no JetStream. */
export async function openJetStream(servers: string[]): Promise<JetStreamTarget> {
  let nc: NatsConnection;
  try {
    nc = await connect({ servers, name: "stan-migrate", maxReconnectAttempts: 10 });
  } catch (err) {
    throw new CliError(
      `cannot connect to the JetStream server at ${servers.join(",")}: ${(err as Error).message}`,
      "point --js-url at a nats-server started with JetStream (nats-server -js)",
      { cause: err },
    );
  }
  try {
    const jsm = await nc.jetstreamManager();
    return { nc, jsm, js: nc.jetstream(), servers };
  } catch (err) {
    await nc.close().catch(() => {});
    throw new CliError(
      `no JetStream at ${servers.join(",")}: ${(err as Error).message}`,
      "start that nats-server with JetStream enabled (nats-server -js -sd <dir>), or point --js-url at one that has it",
      { cause: err },
    );
  }
}

/** True when the subject filter `pattern` (with `*` and `>`) matches `subject`. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== "*" && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}

/** How to create the stream when it does not exist. */
export interface StreamSettings {
  /** Replicas of a new stream (a JetStream cluster). */
  replicas: number;
}

/**
 * The stream `name`, created with `subject` as its only subject (file storage, no limits) when
 * it does not exist; an existing stream must capture `subject`.
 * @param settings how to create it; undefined: a missing stream is an error (`--verify-only`).
 */
export async function ensureStream(
  jsm: JetStreamManager,
  name: string,
  subject: string,
  settings: StreamSettings | undefined,
): Promise<{ info: StreamInfo; created: boolean }> {
  let info: StreamInfo;
  try {
    info = await jsm.streams.info(name);
  } catch (err) {
    if (apiCode(err) !== STREAM_NOT_FOUND) throw err;
    if (settings === undefined) {
      throw new CliError(
        `stream "${name}" does not exist`,
        "migrate the channel first (stan migrate without --verify-only), or name the stream with --stream",
      );
    }
    try {
      info = await jsm.streams.add({
        name,
        subjects: [subject],
        storage: StorageType.File,
        num_replicas: settings.replicas,
      });
    } catch (addErr) {
      const owner = await jsm.streams.find(subject).catch(() => undefined);
      throw new CliError(
        `cannot create stream "${name}" for subject "${subject}": ${(addErr as Error).message}`,
        owner === undefined
          ? "check the JetStream server's limits and permissions (and --replicas against its cluster size)"
          : `stream "${owner}" already captures subject "${subject}": migrate into it (--stream ${owner}) or publish on another subject (--subject)`,
        { cause: addErr },
      );
    }
    return { info, created: true };
  }
  const subjects = info.config.subjects ?? [];
  if (!subjects.some((p) => subjectMatches(p, subject))) {
    throw new CliError(
      `stream "${name}" exists but does not capture subject "${subject}" (its subjects: ${subjects.join(", ") || "none"})`,
      "it may belong to another channel whose name maps to the same stream: choose another --stream, or --subject",
    );
  }
  return { info, created: false };
}

/** Where a migration into a stream stopped. */
export interface StreamTail {
  /** The stream's last sequence (of any subject): the expected last sequence of the next publish. */
  streamLast: number;
  /** STAN sequence of the last message migrated to the subject, undefined when there is none. */
  stanLast: bigint | undefined;
}

/** Parses a message's migration header, or throws a CliError naming the stream message. */
function bigintHeader(value: string | undefined, header: string, where: string): bigint {
  if (value === undefined || !/^\d+$/.test(value)) {
    throw new CliError(
      `${where} has no valid ${header} header (${value === undefined ? "none" : `"${value}"`}): the stream holds messages that stan migrate did not write`,
      "migrate into a stream of its own: choose another --stream",
    );
  }
  return BigInt(value);
}

/** Reads the stream's last sequence and the STAN sequence of the last message on `subject`. */
export async function streamTail(
  jsm: JetStreamManager,
  stream: string,
  subject: string,
): Promise<StreamTail> {
  const info = await jsm.streams.info(stream);
  const streamLast = info.state.last_seq;
  if (info.state.messages === 0) return { streamLast, stanLast: undefined };
  try {
    const m = await jsm.streams.getMessage(stream, { last_by_subj: subject });
    const where = `message ${m.seq} of stream "${stream}"`;
    return {
      streamLast,
      stanLast: bigintHeader(m.header.get(SEQUENCE_HEADER) || undefined, SEQUENCE_HEADER, where),
    };
  } catch (err) {
    if (apiCode(err) === NO_MESSAGE_FOUND) return { streamLast, stanLast: undefined };
    throw err;
  }
}

/** What {@link readStream} found. */
export interface StreamContent {
  /** The messages with a STAN sequence in the range asked for. */
  digest: MessageDigest;
  /** Messages on the subject before the range (the channel no longer holds them). */
  before: number;
  /** Messages on the subject after the range. */
  after: number;
}

/**
 * Re-reads every message of `subject` in `stream` in stream order (an ordered consumer) and
 * digests those whose STAN sequence is in `from..to`.
 */
export async function readStream(
  target: JetStreamTarget,
  stream: string,
  subject: string,
  range: { from: bigint; to: bigint },
  signal: AbortSignal | undefined,
  onMessage: () => void = () => {},
): Promise<StreamContent> {
  const result: StreamContent = { digest: new MessageDigest(), before: 0, after: 0 };
  const info = await target.jsm.streams.info(stream, { subjects_filter: subject });
  const total = info.state.subjects?.[subject] ?? 0;
  if (total === 0) return result;
  const consumer = await target.js.consumers.get(stream, { filterSubjects: subject });
  const messages = await consumer.consume({ max_messages: 8192 });
  const stop = () => messages.stop();
  signal?.addEventListener("abort", stop, { once: true });
  try {
    for await (const m of messages) {
      const where = `message ${m.seq} of stream "${stream}"`;
      const seq = bigintHeader(
        m.headers?.get(SEQUENCE_HEADER) || undefined,
        SEQUENCE_HEADER,
        where,
      );
      const ts = bigintHeader(
        m.headers?.get(TIMESTAMP_HEADER) || undefined,
        TIMESTAMP_HEADER,
        where,
      );
      if (seq < range.from) result.before++;
      else if (seq > range.to) result.after++;
      else result.digest.add(seq, ts, m.data);
      onMessage();
      if (m.info.pending === 0) break;
    }
  } finally {
    signal?.removeEventListener("abort", stop);
    messages.stop();
  }
  return result;
}

/** A JetStream publish the stream refused or did not acknowledge in time. */
export class PublishError extends Error {
  override name = "PublishError";
  /**
   * The JetStream API error code when the stream sent one (10071: wrong last sequence, 10070:
   * wrong last msg ID).
   */
  readonly apiCode: number | undefined;

  constructor(message: string, apiCode?: number) {
    super(message);
    this.apiCode = apiCode;
  }
}

/** One message for {@link PipelinedPublisher.publish}. */
export interface MigratedMessage {
  /** STAN sequence. */
  sequence: bigint;
  /** STAN timestamp in nanoseconds. */
  timestampNanos: bigint;
  data: Uint8Array;
  /**
   * What the stream's last message must be for this one to be stored: its stream sequence
   * (`Nats-Expected-Last-Sequence`; the first message of a pass, after reading the stream's
   * tail), or the STAN sequence of the message before this one, checked through its message ID
   * (`Nats-Expected-Last-Msg-Id`; every later message).
   */
  after: { streamSequence: number } | { stanSequence: bigint };
}

interface PendingAck {
  sentAt: number;
  resolve(): void;
  reject(err: Error): void;
}

const decoder = new TextDecoder();

/**
 * Publishes to a stream with many messages awaiting their ack, each with the migration headers,
 * its `Nats-Msg-Id` and the expectation of {@link MigratedMessage.after}. The acks come back on one wildcard inbox
 * subscription (`<inbox>.<n>`), matched by number: about five times the rate of one
 * `jetstream().publish()` request each (nats 2.x sets up a request and a timer per message).
 * A publish without an ack within `timeoutMs` fails with a {@link PublishError}.
 */
export class PipelinedPublisher {
  private readonly inbox = createInbox();
  private readonly pending = new Map<number, PendingAck>();
  private readonly sub: Subscription;
  private readonly sweep: NodeJS.Timeout;
  private next = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly channel: string,
    private readonly subject: string,
    private readonly timeoutMs = 10_000,
  ) {
    this.sub = nc.subscribe(`${this.inbox}.*`, { callback: (err, msg) => this.onAck(err, msg) });
    this.sweep = setInterval(() => this.expire(), Math.min(1000, timeoutMs)).unref();
  }

  /** Publishes awaiting their ack. */
  get inflight(): number {
    return this.pending.size;
  }

  /** Makes sure the ack subscription is in place before the first publish. */
  ready(): Promise<void> {
    return this.nc.flush();
  }

  /** Sends one message; resolves once the stream stored it (or had it already: a duplicate). */
  publish(m: MigratedMessage): Promise<void> {
    const h = headers();
    h.set(SEQUENCE_HEADER, m.sequence.toString());
    h.set(TIMESTAMP_HEADER, m.timestampNanos.toString());
    h.set("Nats-Msg-Id", messageId(this.channel, m.sequence));
    if ("streamSequence" in m.after) {
      h.set("Nats-Expected-Last-Sequence", String(m.after.streamSequence));
    } else {
      h.set("Nats-Expected-Last-Msg-Id", messageId(this.channel, m.after.stanSequence));
    }
    const id = ++this.next;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { sentAt: performance.now(), resolve, reject });
      try {
        this.nc.publish(this.subject, m.data, { reply: `${this.inbox}.${id}`, headers: h });
      } catch (err) {
        this.pending.delete(id);
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  /** Stops listening for acks; publishes still awaiting one fail. */
  close(): void {
    clearInterval(this.sweep);
    this.sub.unsubscribe();
    this.failAll(new PublishError("the migration stopped before JetStream acknowledged it"));
  }

  private onAck(err: Error | null, msg: Msg): void {
    if (err) {
      this.failAll(new PublishError(`the JetStream ack subscription failed: ${err.message}`));
      return;
    }
    const id = Number(msg.subject.slice(this.inbox.length + 1));
    const p = this.pending.get(id);
    if (!p) return; // expired already
    this.pending.delete(id);
    if (msg.headers?.code === 503) {
      p.reject(new PublishError(`no stream captures subject "${this.subject}" (no responders)`));
      return;
    }
    let reply: { error?: { description?: string; err_code?: number } };
    try {
      reply = JSON.parse(decoder.decode(msg.data)) as typeof reply;
    } catch {
      p.reject(new PublishError(`JetStream answered a publish with "${decoder.decode(msg.data)}"`));
      return;
    }
    if (reply.error) {
      const code = reply.error.err_code;
      p.reject(
        new PublishError(`${reply.error.description ?? "refused"} (JetStream error ${code})`, code),
      );
    } else {
      p.resolve();
    }
  }

  private expire(): void {
    const now = performance.now();
    for (const [id, p] of this.pending) {
      if (now - p.sentAt < this.timeoutMs) break; // in send order: the rest are younger
      this.pending.delete(id);
      p.reject(new PublishError(`no ack from JetStream within ${this.timeoutMs / 1000}s`));
    }
  }

  private failAll(err: Error): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(err);
  }
}
