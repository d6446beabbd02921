/**
 * `stan bench`: publishers and subscribers on one channel, with a progress bar and a summary
 * in the manner of the Go `stan-bench`.
 */

import { randomBytes } from "node:crypto";
import type { StanConnection, Subscription } from "stan-ts";
import {
  CONNECTION_HELP,
  CONNECTION_OPTIONS,
  type ConnectionSettings,
  connectCli,
  connectionSettings,
  intFlag,
  parseCommand,
} from "./common.js";
import { CliError, type CliIO, type OutputStream, UsageError, write } from "./io.js";

/** The `stan bench --help` text. */
export const BENCH_HELP = `Usage: stan bench [options] [subject]

Benchmarks publishing and subscribing on one channel (default: a new "stan-bench.<random>").
Subscribers (each on its own connection) receive every message; publishers (each on its own
connection) share --msgs between them. Prints a progress bar on stderr (on a terminal, or
with --progress) and a summary on stdout: msgs/sec and MB/sec for each publisher and
subscriber, their aggregates, and min/avg/max/stddev.

Options:
      --pub <n>             Publishers (default: 1)
      --sub <n>             Subscribers (default: 0)
      --msgs <n>            Messages to publish in all (default: 100000)
      --size <n>            Payload size in bytes (default: 128)
      --async               Pipelined publishing (publishAsync): many acks awaited at once
                            (default: each publish waits for its ack)
      --max-pub-acks <n>    Publishes awaiting their ack per publisher (default: 16384)
      --progress            Draw the progress bar even when stderr is not a terminal
  -q, --quiet               No progress bar
${CONNECTION_HELP}
Examples:
  stan bench --msgs 100000 --size 128
  stan bench --pub 2 --sub 2 --msgs 50000 --async
`;

const BENCH_OPTIONS = {
  ...CONNECTION_OPTIONS,
  pub: { type: "string" },
  sub: { type: "string" },
  msgs: { type: "string" },
  size: { type: "string" },
  async: { type: "boolean" },
  "max-pub-acks": { type: "string" },
  progress: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
} as const;

/** One publisher's or subscriber's run: messages, bytes, and when it started and ended (ms). */
export interface BenchSample {
  /** Messages published (acknowledged) or received. */
  msgs: number;
  /** Payload bytes of those messages. */
  bytes: number;
  /** When the first publish was sent or the first message received (`performance.now()`). */
  start: number;
  /** When the last ack or the last message arrived (`performance.now()`). */
  end: number;
}

/** Messages per second of a sample (its duration is at least a microsecond). */
function rate(s: BenchSample): number {
  return s.msgs / (Math.max(s.end - s.start, 0.001) / 1000);
}

function mbRate(s: BenchSample): number {
  return s.bytes / (1024 * 1024) / (Math.max(s.end - s.start, 0.001) / 1000);
}

/** The samples merged: all messages and bytes over the span from the first start to the last end. */
function merge(samples: BenchSample[]): BenchSample {
  return {
    msgs: samples.reduce((n, s) => n + s.msgs, 0),
    bytes: samples.reduce((n, s) => n + s.bytes, 0),
    start: Math.min(...samples.map((s) => s.start)),
    end: Math.max(...samples.map((s) => s.end)),
  };
}

const commas = (n: number): string => Math.round(n).toLocaleString("en-US");

function line(s: BenchSample): string {
  return `${commas(rate(s))} msgs/sec ~ ${mbRate(s).toFixed(2)} MB/sec`;
}

function group(title: string, samples: BenchSample[]): string {
  if (samples.length === 0) return "";
  const rates = samples.map(rate);
  const avg = rates.reduce((a, b) => a + b, 0) / rates.length;
  const stddev = Math.sqrt(rates.reduce((a, r) => a + (r - avg) ** 2, 0) / rates.length);
  const rows = samples.map((s, i) => `  [${i + 1}] ${line(s)} (${s.msgs} msgs)\n`).join("");
  return (
    ` ${title} stats: ${line(merge(samples))}\n${rows}` +
    `  min ${commas(Math.min(...rates))} | avg ${commas(avg)} | max ${commas(Math.max(...rates))} | stddev ${commas(stddev)} msgs\n`
  );
}

/** The summary of a run, as printed by `stan bench`. */
export function benchSummary(pubs: BenchSample[], subs: BenchSample[]): string {
  const all = [...pubs, ...subs];
  let head = "";
  if (pubs.length > 0 && subs.length > 0)
    head = `NATS Streaming Pub/Sub stats: ${line(merge(all))}\n`;
  else if (pubs.length > 0) head = `NATS Streaming Pub stats: ${line(merge(pubs))}\n`;
  else if (subs.length > 0) head = `NATS Streaming Sub stats: ${line(merge(subs))}\n`;
  return head + group("Pub", pubs) + group("Sub", subs);
}

/** A one-line progress bar redrawn in place at most every 100 ms. */
class Progress {
  private last = 0;
  published = 0;
  received = 0;

  constructor(
    private readonly out: OutputStream | undefined,
    private readonly msgs: number,
    private readonly subs: number,
  ) {}

  /** Messages all subscribers together should receive. */
  get expectedReceived(): number {
    return this.msgs * this.subs;
  }

  tick(force = false): void {
    if (!this.out) return;
    const now = performance.now();
    if (!force && now - this.last < 100) return;
    this.last = now;
    const total = this.msgs * (1 + this.subs);
    const done = this.published + this.received;
    const width = 30;
    const filled = Math.min(width, Math.floor((done / total) * width));
    const pct = Math.floor((done / total) * 100);
    const subPart =
      this.subs > 0 ? `  received ${commas(this.received)}/${commas(this.msgs * this.subs)}` : "";
    this.out.write(
      `\r[${"#".repeat(filled)}${".".repeat(width - filled)}] ${String(pct).padStart(3)}%  published ${commas(this.published)}/${commas(this.msgs)}${subPart}`,
    );
  }

  finish(): void {
    if (!this.out) return;
    this.tick(true);
    this.out.write("\n");
  }
}

/** Runs `stan bench`; resolves with the exit code. */
export async function bench(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommand(args, BENCH_OPTIONS);
  if (values.help) {
    await write(io.stdout, BENCH_HELP);
    return 0;
  }
  const [given, ...extra] = positionals;
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const subject = given ?? `stan-bench.${randomBytes(4).toString("hex")}`;
  const numPubs = intFlag("pub", values.pub, 1, 0, 1000);
  const numSubs = intFlag("sub", values.sub, 0, 0, 1000);
  const msgs = intFlag("msgs", values.msgs, 100_000, 1);
  const size = intFlag("size", values.size, 128, 0, 64 * 1024 * 1024);
  const maxPubAcks = intFlag("max-pub-acks", values["max-pub-acks"], 16_384);
  if (numPubs === 0) throw new UsageError("--pub must be at least 1");
  const base = connectionSettings(values, io, "bench");
  const signal = io.signal;
  const showProgress =
    values.quiet !== true && (values.progress === true || io.stderr.isTTY === true);
  const progress = new Progress(showProgress ? io.stderr : undefined, msgs, numSubs);
  const payload = new Uint8Array(size).fill(0x61);

  await write(
    io.stdout,
    `Starting benchmark [msgs=${msgs}, msgsize=${size}, pubs=${numPubs}, subs=${numSubs}, async=${values.async === true}]\n`,
  );

  const conns: StanConnection[] = [];
  const subscriptions: Subscription[] = [];
  // Ctrl-C: subscriptions end their loops; closing the connections ends pending publishes.
  const stop = () => {
    for (const s of subscriptions) void s.close().catch(() => {});
    for (const c of conns) void c.close().catch(() => {});
  };
  signal?.addEventListener("abort", stop, { once: true });
  const settings = (role: string, i: number): ConnectionSettings => ({
    ...base,
    clientId: `${base.clientId}-${role}${i + 1}`,
  });
  // Live samples: on Ctrl-C the figures so far are printed from them.
  const pubSamples: BenchSample[] = [];
  const subSamples: BenchSample[] = [];
  const onInterrupt = async (): Promise<number> => {
    progress.finish();
    const now = performance.now();
    const partial = (samples: BenchSample[]) =>
      samples.filter((x) => x.msgs > 0).map((x) => ({ ...x, end: x.end > 0 ? x.end : now }));
    const published = pubSamples.reduce((n, x) => n + x.msgs, 0);
    const received = subSamples.reduce((n, x) => n + x.msgs, 0);
    const subPart = numSubs > 0 ? `, ${received} of ${msgs * numSubs} received` : "";
    await write(
      io.stderr,
      `stan bench: interrupted: ${published} of ${msgs} messages published${subPart}; the figures so far:\n`,
    );
    await write(io.stdout, benchSummary(partial(pubSamples), partial(subSamples)));
    return 130;
  };
  try {
    // Subscribers first, so that they see every message.
    const subRuns: Array<Promise<BenchSample>> = [];
    for (let i = 0; i < numSubs; i++) {
      const sc = await connectCli(settings("sub", i), io);
      conns.push(sc);
      const subscription = await sc.subscribe(subject, { signal });
      subscriptions.push(subscription);
      subRuns.push(
        (async () => {
          const sample: BenchSample = { msgs: 0, bytes: 0, start: 0, end: 0 };
          subSamples.push(sample);
          for await (const msg of subscription) {
            if (sample.msgs === 0) sample.start = performance.now();
            sample.msgs++;
            sample.bytes += msg.data.length;
            progress.received++;
            progress.tick();
            if (sample.msgs >= msgs) {
              sample.end = performance.now();
              break;
            }
          }
          const error = await subscription.closed;
          if (error) throw error;
          return sample;
        })(),
      );
    }
    for (const run of subRuns) run.catch(() => {}); // awaited below
    const pubConns: StanConnection[] = [];
    for (let i = 0; i < numPubs; i++) {
      const sc = await connectCli(settings("pub", i), io, { maxPubAcksInflight: maxPubAcks });
      conns.push(sc);
      pubConns.push(sc);
    }
    const share = (i: number) => Math.floor(msgs / numPubs) + (i < msgs % numPubs ? 1 : 0);
    const pubRuns = pubConns.map(async (sc, i): Promise<BenchSample> => {
      const n = share(i);
      // Counts acknowledged messages as they come, so that an interrupted run has its figures.
      const sample: BenchSample = { msgs: 0, bytes: 0, start: performance.now(), end: 0 };
      pubSamples[i] = sample;
      const counted = () => {
        sample.msgs++;
        sample.bytes += size;
        progress.published++;
        progress.tick();
      };
      if (values.async === true) {
        let acked = 0;
        let failure: unknown;
        let allAcked!: () => void;
        const done = new Promise<void>((resolve) => {
          allAcked = resolve;
        });
        if (n === 0) allAcked();
        for (let k = 0; k < n && failure === undefined && !signal?.aborted; k++) {
          const sent = await sc.publishAsync(subject, payload);
          sent.acked.then(
            () => {
              counted();
              if (++acked === n) allAcked();
            },
            (err: unknown) => {
              failure ??= err;
              allAcked();
            },
          );
        }
        if (failure === undefined && !signal?.aborted) await done;
        if (failure !== undefined) throw failure;
      } else {
        for (let k = 0; k < n && !signal?.aborted; k++) {
          await sc.publish(subject, payload);
          counted();
        }
      }
      sample.end = performance.now();
      return sample;
    });
    const pubDone = await Promise.all(pubRuns);
    if (signal?.aborted) return await onInterrupt();
    const subDone = await waitForSubscribers(subRuns, progress, signal);
    if (signal?.aborted) return await onInterrupt();
    progress.finish();
    await write(io.stdout, benchSummary(pubDone, subDone));
    return 0;
  } catch (err) {
    if (signal?.aborted) return await onInterrupt();
    throw err;
  } finally {
    signal?.removeEventListener("abort", stop);
    await Promise.all(conns.map((c) => c.close().catch(() => {})));
  }
}

/** How long subscribers may go without a message once publishing is done. */
const STALL_MS = 10_000;

/** Waits for every subscriber to get all messages; fails when they stop making progress. */
async function waitForSubscribers(
  runs: Array<Promise<BenchSample>>,
  progress: Progress,
  signal: AbortSignal | undefined,
): Promise<BenchSample[]> {
  const all = Promise.all(runs);
  let seen = progress.received;
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const tick = new Promise<"tick">((resolve) => {
      timer = setTimeout(() => resolve("tick"), STALL_MS);
    });
    const result = await Promise.race([all, tick]).finally(() => clearTimeout(timer));
    if (result !== "tick") return result;
    if (signal?.aborted) return [];
    if (progress.received === seen) {
      throw new CliError(
        `subscribers received ${progress.received} of ${progress.expectedReceived} messages and got nothing for ${STALL_MS / 1000}s`,
        "the server may have dropped messages (channel limits?): check its limits (-mm, -mb)",
      );
    }
    seen = progress.received;
  }
}
