/**
 * `stan migrate`: copies a NATS Streaming channel into a JetStream stream in order, resumably,
 * then checks counts and a checksum on both sides.
 *
 * How it stays exact across a kill: the stream itself records how far the copy got. Each message
 * carries its STAN sequence in a `Stan-Sequence` header, so a new run reads the stream's last
 * message and replays the channel from the sequence after it (a plain subscription at that
 * sequence: no durable to keep in step). Publishes are pipelined, and each one names what the
 * stream's last message must be for it to be stored: the first of a run the stream sequence
 * just read (`Nats-Expected-Last-Sequence`), each later one its predecessor's message ID
 * (`Nats-Expected-Last-Msg-Id`). A message whose predecessor did not make it is refused, so the
 * stream only ever holds an unbroken prefix of the channel, never a gap, even with another
 * writer on the stream. Each message's `Nats-Msg-Id` is `<channel>:<sequence>`: a message
 * re-sent within the stream's duplicate window (the run before was killed after the stream
 * stored it but before the ack came back, and its late publishes still land) is acknowledged
 * as a duplicate instead of stored twice.
 */

import type { Message, StanConnection, StartAt } from "stan-ts";
import {
  CONNECTION_HELP,
  CONNECTION_OPTIONS,
  connectCli,
  connectionSettings,
  intFlag,
  parseCommand,
  withConnection,
} from "./common.js";
import { CliError, type CliIO, UsageError, untilAborted, write } from "./io.js";
import {
  ensureStream,
  invalidStreamName,
  type JetStreamTarget,
  MessageDigest,
  openJetStream,
  PipelinedPublisher,
  readStream,
  type StreamTail,
  streamNameFor,
  streamTail,
} from "./migrate-stream.js";
import { ProgressReporter, progressMode } from "./progress.js";

/** The `stan migrate --help` text. */
export const MIGRATE_HELP = `Usage: stan migrate [options] --channel <channel>

Copies the messages of a NATS Streaming channel, in order, into a JetStream stream (created
when missing), then re-reads both sides and compares their counts and SHA-256 checksums.
Each message keeps its payload and gets the headers Stan-Sequence (its STAN sequence),
Stan-Timestamp (its STAN timestamp, nanoseconds since the Unix epoch) and Nats-Msg-Id
("<channel>:<sequence>"). Copies up to the channel's last message at start; stopped or killed,
it resumes after the stream's last message when run again, without duplicates or gaps.
Exits 1 when the check finds a difference.

Options:
      --channel <name>      The channel to copy (or give it as the only argument)
      --stream <name>       Target stream (default: the JetStream backend's name for the
                            channel: letters, digits and "-" kept, every other byte as
                            "_" and two hex digits, e.g. orders.eu -> orders_2Eeu)
      --subject <subject>   Subject the messages are published on (default: the channel name)
      --js-url <url>        JetStream NATS server URL(s), comma-separated (default: --server)
      --batch <n>           Publishes awaiting their JetStream ack at once (default: 512)
      --replicas <n>        Replicas of a stream it creates (default: 1)
      --verify-only         Copy nothing: only compare the channel and the stream
      --progress            Draw the progress bar even when stderr is not a terminal
                            (elsewhere: a line at every 10%)
  -q, --quiet               No progress output
${CONNECTION_HELP}
Examples:
  stan migrate --channel orders --js-url nats://js.example:4222
  stan migrate orders.eu --stream ORDERS_EU --subject orders.eu
  stan migrate --channel orders --verify-only
`;

const MIGRATE_OPTIONS = {
  ...CONNECTION_OPTIONS,
  channel: { type: "string" },
  stream: { type: "string" },
  subject: { type: "string" },
  "js-url": { type: "string" },
  batch: { type: "string" },
  replicas: { type: "string" },
  "verify-only": { type: "boolean" },
  progress: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
} as const;

/** How long to wait for a channel's last message before taking the channel to be empty. */
const EMPTY_CHANNEL_WAIT_MS = 2000;
/** How long a channel known to hold messages may take to deliver its first one. */
const DELIVERY_WAIT_MS = 30_000;
/** Copy passes in a row that copy nothing (a publish failed) before the command gives up. */
const MAX_FRUITLESS_PASSES = 3;

const commas = (n: number | bigint): string => n.toLocaleString("en-US");

/** The first and last sequence of a channel; undefined for an empty channel. */
interface ChannelBounds {
  first: bigint;
  last: bigint;
}

/** Everything a migration step needs. */
interface Migration {
  io: CliIO;
  sc: StanConnection;
  target: JetStreamTarget;
  channel: string;
  stream: string;
  subject: string;
  window: number;
  signal: AbortSignal | undefined;
  progressFlags: { quiet: boolean; force: boolean };
}

/**
 * The first message a subscription starting at `startAt` delivers, or undefined when none
 * comes within `waitMs` (or on Ctrl-C).
 */
async function firstDelivered(
  m: Migration,
  startAt: StartAt,
  waitMs: number,
): Promise<Message | undefined> {
  const sub = await m.sc.subscribe(m.channel, {
    startAt,
    maxInflight: 1,
    manualAcks: true,
    signal: m.signal,
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    const it = untilAborted(sub, m.signal);
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), waitMs);
    });
    const next = it.next().then((r) => (r.done ? undefined : r.value));
    const msg = await Promise.race([next, timeout]);
    void it.return(undefined);
    return msg;
  } finally {
    clearTimeout(timer);
    await sub.close().catch(() => {});
  }
}

/** Finds the channel's first and last sequence (STAN has no request for it: two probes). */
async function channelBounds(m: Migration): Promise<ChannelBounds | undefined> {
  const last = await firstDelivered(m, "last-received", EMPTY_CHANNEL_WAIT_MS);
  if (last === undefined) return undefined;
  const first = await firstDelivered(m, "first", DELIVERY_WAIT_MS);
  if (first === undefined) {
    throw new CliError(
      `channel "${m.channel}" delivered its last message (${last.sequence}) but not its first within ${DELIVERY_WAIT_MS / 1000}s`,
    );
  }
  return { first: first.sequence, last: last.sequence };
}

/** Acknowledges a message, ignoring a subscription closed meanwhile (only flow control). */
function ack(msg: Message): void {
  try {
    msg.ack();
  } catch {
    // The subscription is closing: nothing more will be delivered anyway.
  }
}

/** What one copy pass did. */
interface PassResult {
  copied: number;
  /** Why it stopped before the end of the channel (a publish failed). */
  error?: unknown;
}

/**
 * Copies the channel from the message after `tail.stanLast` up to `bounds.last`, publishing
 * up to `m.window` messages ahead of their acks: the first expecting the stream's last sequence
 * as read, each later one expecting its predecessor as the stream's last message. Stops at the
 * first failed publish (after the ones in flight settle).
 */
async function copyPass(
  m: Migration,
  bounds: ChannelBounds,
  tail: StreamTail,
  progress: ProgressReporter,
  doneBefore: number,
): Promise<PassResult> {
  const from = tail.stanLast === undefined ? bounds.first : tail.stanLast + 1n;
  const sub = await m.sc.subscribe(m.channel, {
    startAt: { sequence: from },
    manualAcks: true,
    maxInflight: Math.max(m.window, 256),
    ackWait: 60_000,
    signal: m.signal,
  });
  const publisher = new PipelinedPublisher(m.target.nc, m.channel, m.subject);
  let expected: bigint | undefined = tail.stanLast === undefined ? undefined : from;
  let previous: bigint | undefined;
  let copied = 0;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const settled = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const waitWhile = async (busy: () => boolean): Promise<void> => {
    while (busy()) await new Promise<void>((resolve) => (wake = resolve));
  };
  try {
    await publisher.ready();
    for await (const msg of untilAborted(sub, m.signal)) {
      if (expected !== undefined && msg.sequence < expected) {
        ack(msg); // a redelivery of a message already taken
        continue;
      }
      if (expected !== undefined && msg.sequence !== expected) {
        throw new CliError(
          `channel "${m.channel}" no longer holds sequence ${expected} (it delivered ${msg.sequence} next): its limits removed messages before they were copied`,
          `the stream holds the channel up to ${expected - 1n}; the missing messages are gone from the channel. Migrate the rest into a new stream (--stream) or accept the gap by copying with another tool`,
        );
      }
      ack(msg);
      await waitWhile(() => publisher.inflight >= m.window && failure === undefined);
      if (failure !== undefined || m.signal?.aborted) break;
      publisher
        .publish({
          sequence: msg.sequence,
          timestampNanos: msg.timestampNanos,
          data: msg.data,
          // The first message follows the tail just read; each later one its predecessor.
          after:
            previous === undefined
              ? { streamSequence: tail.streamLast }
              : { stanSequence: previous },
        })
        .then(
          () => {
            copied++;
            progress.update(doneBefore + copied);
          },
          (err: unknown) => {
            failure ??= err;
          },
        )
        .finally(settled);
      previous = msg.sequence;
      expected = msg.sequence + 1n;
      if (msg.sequence >= bounds.last) break;
    }
  } finally {
    await waitWhile(() => publisher.inflight > 0);
    publisher.close();
    await sub.close().catch(() => {});
  }
  return failure === undefined ? { copied } : { copied, error: failure };
}

/** Copies what the stream lacks of the channel; resolves with the messages copied. */
async function copy(m: Migration, bounds: ChannelBounds): Promise<number> {
  const total = Number(bounds.last - bounds.first + 1n);
  let tail = await streamTail(m.target.jsm, m.stream, m.subject);
  checkTail(m, bounds, tail);
  const already = tail.stanLast === undefined ? 0 : Number(tail.stanLast - bounds.first + 1n);
  const from = tail.stanLast === undefined ? bounds.first : tail.stanLast + 1n;
  await write(
    m.io.stderr,
    tail.stanLast === undefined
      ? `stan migrate: copying channel "${m.channel}" (sequences ${bounds.first}..${bounds.last}) to stream "${m.stream}", subject "${m.subject}"\n`
      : tail.stanLast >= bounds.last
        ? `stan migrate: stream "${m.stream}" already holds channel "${m.channel}" up to its last sequence ${bounds.last}\n`
        : `stan migrate: stream "${m.stream}" holds channel "${m.channel}" up to sequence ${tail.stanLast}: resuming from ${from} to ${bounds.last}\n`,
  );
  const progress = new ProgressReporter({
    out: m.io.stderr,
    mode: progressMode(m.io.stderr, m.progressFlags),
    label: "stan migrate",
    total,
    start: already,
  });
  let copied = 0;
  let fruitless = 0;
  while (!m.signal?.aborted && (tail.stanLast === undefined || tail.stanLast < bounds.last)) {
    const pass = await copyPass(m, bounds, tail, progress, already + copied);
    copied += pass.copied;
    if (m.signal?.aborted) break;
    fruitless = pass.copied > 0 ? 0 : fruitless + 1;
    if (pass.error !== undefined || fruitless > 0) {
      const reason =
        pass.error === undefined
          ? "the channel delivered nothing"
          : pass.error instanceof Error
            ? pass.error.message
            : String(pass.error);
      if (fruitless >= MAX_FRUITLESS_PASSES) {
        throw new CliError(
          `publishing to stream "${m.stream}" failed ${fruitless} times in a row: ${reason}`,
          `"wrong last sequence" or "wrong last msg ID" means that something else keeps publishing to the stream: give the migration a stream of its own (--stream). Otherwise check the JetStream server; run the same command again to resume`,
          { cause: pass.error },
        );
      }
      await write(
        m.io.stderr,
        `stan migrate: stopped early (${reason}); resuming from the stream's last message\n`,
      );
    }
    tail = await streamTail(m.target.jsm, m.stream, m.subject);
    checkTail(m, bounds, tail);
  }
  progress.finish();
  return copied;
}

/** Refuses a stream that is ahead of the channel: it was not migrated from this channel. */
function checkTail(m: Migration, bounds: ChannelBounds, tail: StreamTail): void {
  if (tail.stanLast !== undefined && tail.stanLast > bounds.last) {
    throw new CliError(
      `stream "${m.stream}" holds sequence ${tail.stanLast} on "${m.subject}", beyond channel "${m.channel}"'s last sequence ${bounds.last}`,
      "it was migrated from another channel or server: choose another --stream",
    );
  }
}

/** Re-reads the channel from its first message up to `last` into a digest. */
async function readChannel(m: Migration, last: bigint): Promise<MessageDigest> {
  const digest = new MessageDigest();
  const sub = await m.sc.subscribe(m.channel, {
    startAt: "first",
    manualAcks: true,
    maxInflight: 1024,
    ackWait: 60_000,
    signal: m.signal,
  });
  try {
    for await (const msg of untilAborted(sub, m.signal)) {
      if (digest.last !== undefined && msg.sequence <= digest.last && msg.redelivered) {
        ack(msg);
        continue;
      }
      digest.add(msg.sequence, msg.timestampNanos, msg.data);
      ack(msg);
      if (msg.sequence >= last) break;
    }
  } finally {
    await sub.close().catch(() => {});
  }
  return digest;
}

/** Compares the channel (up to `bounds.last`) with the stream; prints both sides on stdout. */
async function verify(m: Migration, bounds: ChannelBounds | undefined): Promise<void> {
  await write(m.io.stderr, "stan migrate: verifying: re-reading the channel and the stream\n");
  const from = bounds?.first ?? 1n;
  const to = bounds?.last ?? 0n;
  // Both sides at once: the channel from its first message, the stream in stream order.
  const [channel, stream] = await Promise.all([
    bounds === undefined ? new MessageDigest() : readChannel(m, bounds.last),
    readStream(m.target, m.stream, m.subject, { from, to }, m.signal),
  ]);
  if (m.signal?.aborted) return;
  const channelSum = channel.hex();
  const streamSum = stream.digest.hex();
  const out = [
    `channel "${m.channel}": ${channel.describe()}, sha256 ${channelSum}`,
    `stream "${m.stream}": ${stream.digest.describe()}, sha256 ${streamSum}`,
  ];
  if (stream.before > 0) {
    out.push(
      `note: the stream also holds ${commas(stream.before)} messages older than the channel's first sequence ${from} (the channel no longer has them)`,
    );
  }
  const problems: string[] = [];
  if (stream.digest.breakCount > 0) {
    problems.push(
      `the stream's sequences do not follow one another ${stream.digest.breakCount} times: ${stream.digest.problems.join("; ")}`,
    );
  }
  if (channel.breakCount > 0) {
    problems.push(
      `the channel's sequences do not follow one another: ${channel.problems.join("; ")}`,
    );
  }
  if (stream.after > 0) {
    problems.push(
      `the stream holds ${commas(stream.after)} messages beyond the channel's last sequence ${to}`,
    );
  }
  if (stream.digest.count !== channel.count) {
    problems.push(
      `counts differ: ${commas(channel.count)} in the channel, ${commas(stream.digest.count)} in the stream`,
    );
  } else if (streamSum !== channelSum) {
    problems.push("checksums differ: a payload, sequence or timestamp differs");
  }
  if (problems.length === 0) out.push("verified: the counts and checksums match");
  else out.push(...problems.map((p) => `MISMATCH: ${p}`));
  await write(m.io.stdout, `${out.join("\n")}\n`);
  if (problems.length > 0) {
    const behind = (stream.digest.last ?? 0n) < to && stream.digest.breakCount === 0;
    throw new CliError(
      `verification failed: ${problems[0]}`,
      behind
        ? "the stream is behind the channel: run stan migrate without --verify-only to copy the rest"
        : `compare the two sides with "stan sub ${m.channel} --all --format json" and the stream's messages`,
    );
  }
}

/** Runs `stan migrate`; resolves with the exit code. */
export async function migrate(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommand(args, MIGRATE_OPTIONS);
  if (values.help) {
    await write(io.stdout, MIGRATE_HELP);
    return 0;
  }
  const [given, ...extra] = positionals;
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  if (given !== undefined && values.channel !== undefined && given !== values.channel) {
    throw new UsageError(`two channels: "${given}" and --channel "${values.channel}"`);
  }
  const channel = values.channel ?? given;
  if (channel === undefined) throw new UsageError("missing --channel <channel>");
  const stream = values.stream ?? streamNameFor(channel);
  const badStream = invalidStreamName(stream);
  if (badStream !== undefined) throw new UsageError(`invalid --stream "${stream}": ${badStream}`);
  const subject = values.subject ?? channel;
  if (subject === "" || /[\s*>]/.test(subject)) {
    throw new UsageError(
      `invalid --subject "${subject}": a subject without wildcards or whitespace`,
    );
  }
  const window = intFlag("batch", values.batch, 512, 1, 65_536);
  const replicas = intFlag("replicas", values.replicas, 1, 1, 5);
  const settings = connectionSettings(values, io, "migrate");
  const jsServers = (values["js-url"] ?? settings.servers.join(","))
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (jsServers.length === 0) throw new UsageError("--js-url needs a URL");
  const verifyOnly = values["verify-only"] === true;

  const sc = await connectCli(settings, io);
  return withConnection(sc, async () => {
    const target = await openJetStream(jsServers);
    try {
      const m: Migration = {
        io,
        sc,
        target,
        channel,
        stream,
        subject,
        window,
        signal: io.signal,
        progressFlags: { quiet: values.quiet === true, force: values.progress === true },
      };
      const bounds = await channelBounds(m);
      await ensureStream(target.jsm, stream, subject, verifyOnly ? undefined : { replicas });
      if (m.signal?.aborted) return 130;
      if (!verifyOnly) {
        const started = performance.now();
        const copied = bounds === undefined ? 0 : await copy(m, bounds);
        const seconds = ((performance.now() - started) / 1000).toFixed(1);
        if (m.signal?.aborted) {
          await write(
            io.stderr,
            `stan migrate: interrupted after copying ${commas(copied)} messages; run the same command again to resume\n`,
          );
          return 130;
        }
        await write(
          io.stdout,
          bounds === undefined
            ? `channel "${channel}" is empty: nothing to copy\n`
            : `copied ${commas(copied)} messages from channel "${channel}" to stream "${stream}" (subject "${subject}") in ${seconds}s\n`,
        );
      }
      await verify(m, bounds);
      return m.signal?.aborted ? 130 : 0;
    } finally {
      await target.nc.close().catch(() => {});
    }
  });
}
