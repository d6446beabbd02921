// The JetStream round of `pnpm bench` (issue 13 point 5): stan-ts on JetStream
// (`backend: jetstream()`) beside raw `nats` JetStream on one nats-server -js, and beside
// stan-ts on STAN from the main rounds: async publish, replay and sync publish latency.
import { streamName } from "@stan-ts/jetstream";
import { jetStreamServer } from "@stan-ts/testing";
import { type Spread, spread } from "./stats.js";
import type { ClientName, FigureName, Job, Sample } from "./types.js";

/** The figures measured on JetStream, and by whom. */
export const JETSTREAM_FIGURES: FigureName[] = ["pub128", "replay", "sync"];
export const JETSTREAM_CLIENTS: ClientName[] = ["stan-ts-jetstream", "nats-jetstream"];

/** A nats-server with JetStream (its store in a temporary directory; streams in memory). */
export const startJetStreamServer = jetStreamServer;

/** A measured JetStream run. */
export interface JetStreamRun {
  figure: FigureName;
  client: ClientName;
  sample: Sample;
}

/**
 * Runs the JetStream rounds: the replay stream is filled once (by stan-ts's backend, so both
 * clients replay the same stream), then every figure by both clients, order rotating per round.
 */
export async function runJetStreamRounds(o: {
  url: string;
  /** The figures of this run (`--only`); those of {@link JETSTREAM_FIGURES} among them run. */
  figures: FigureName[];
  rounds: number;
  counts: (figure: FigureName) => number;
  job: (figure: FigureName, client: ClientName, subject: string, count: number) => Job;
  run: (job: Job) => Promise<Sample>;
  log: (line: string) => void;
  runId: string;
}): Promise<JetStreamRun[]> {
  const runs: JetStreamRun[] = [];
  const figures = JETSTREAM_FIGURES.filter((f) => o.figures.includes(f));
  if (figures.length === 0) return runs;
  const replaySubject = `bench.${o.runId}.js.replay`;
  const at = (j: Job): Job => ({ ...j, url: o.url, stream: streamName(replaySubject) });
  if (figures.includes("replay")) {
    const n = o.counts("replay");
    o.log(`bench: storing ${n.toLocaleString("en-US")} messages in JetStream for the replay test`);
    await o.run(at(o.job("pub128", "stan-ts-jetstream", replaySubject, n)));
  }
  for (let round = 0; round < o.rounds; round++) {
    for (const figure of figures) {
      const shift = round % JETSTREAM_CLIENTS.length;
      const order = [...JETSTREAM_CLIENTS.slice(shift), ...JETSTREAM_CLIENTS.slice(0, shift)];
      for (const client of order) {
        const subject =
          figure === "replay" ? replaySubject : `bench.${o.runId}.js.${figure}.${client}.${round}`;
        const sample = await o.run(at(o.job(figure, client, subject, o.counts(figure))));
        runs.push({ figure, client, sample });
        const what =
          figure === "sync"
            ? `p50 ${Math.round(sample.p50Us ?? 0)} us, p99 ${Math.round(sample.p99Us ?? 0)} us`
            : `${Math.round(sample.msgsPerSec ?? 0).toLocaleString("en-US")} msgs/s`;
        o.log(
          `[jetstream ${round + 1}/${o.rounds}] ${figure.padEnd(6)} ${client.padEnd(19)} ${what}`,
        );
      }
    }
  }
  return runs;
}

function fmt(s: Spread, unit: string): string {
  if (s.n === 0) return "-";
  const v = (x: number) =>
    unit === "msgs/s" ? `${(x / 1000).toFixed(x >= 10_000 ? 0 : 1)}k` : x.toFixed(0);
  return s.n === 1 ? v(s.median) : `${v(s.median)} (${v(s.min)}-${v(s.max)})`;
}

/** The Markdown table: stan-ts on STAN, stan-ts on JetStream, raw nats JetStream. */
export function renderJetStream(stanRuns: JetStreamRun[], jsRuns: JetStreamRun[]): string {
  const pick = (runs: JetStreamRun[], f: FigureName, c: ClientName, m: (s: Sample) => number) =>
    spread(runs.filter((r) => r.figure === f && r.client === c).map((r) => m(r.sample)));
  const rows: Array<[FigureName, string, string, (s: Sample) => number]> = [
    ["pub128", "async publish 128 B, window 16k", "msgs/s", (s) => s.msgsPerSec ?? Number.NaN],
    ["replay", "replay 128 B, maxInflight 16k", "msgs/s", (s) => s.msgsPerSec ?? Number.NaN],
    ["sync", "sync publish 128 B: p50", "us", (s) => s.p50Us ?? Number.NaN],
    ["sync", "sync publish 128 B: p99", "us", (s) => s.p99Us ?? Number.NaN],
  ];
  const out = [
    "",
    "stan-ts on JetStream (`backend: jetstream()`, memory streams, nats-server -js) beside stan-ts on STAN (the rounds above) and raw `nats` 2.x JetStream (`js.publish` with the same window; a pull consumer with explicit acks):",
    "",
    "| figure | unit | stan-ts on STAN | stan-ts on JetStream | raw nats JetStream | stan-ts JetStream / raw |",
    "|---|---|---:|---:|---:|---:|",
  ];
  const ran = new Set(jsRuns.map((r) => r.figure));
  for (const [f, label, unit, m] of rows.filter(([f]) => ran.has(f))) {
    const stan = pick(stanRuns, f, "stan-ts", m);
    const ours = pick(jsRuns, f, "stan-ts-jetstream", m);
    const raw = pick(jsRuns, f, "nats-jetstream", m);
    const ratio = ours.median / raw.median;
    out.push(
      `| ${label} | ${unit} | ${fmt(stan, unit)} | ${fmt(ours, unit)} | ${fmt(raw, unit)} | ${Number.isFinite(ratio) ? `${ratio.toFixed(2)}x` : "-"} |`,
    );
  }
  out.push("");
  return out.join("\n");
}
