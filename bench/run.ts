/**
 * `pnpm bench`: stan-ts, node-nats-streaming and raw `nats` side by side, in one run, against
 * one streaming server (the embedded one by default; the real binary with NATS_STREAMING_SERVER,
 * a running one with STAN_URL, as in @stan-ts/testing). Each measurement runs in its own child
 * process (bench/worker.ts); rounds alternate the clients after a warm-up round, and the
 * order rotates from round to round so that no client always runs first.
 *
 * Flags: --smoke (tiny counts, one round: CI), --rounds N, --only <figure>[,<figure>...],
 * --profile (children run with node --cpu-prof; the server process profiles itself).
 * Progress goes to stderr; the Markdown table to stdout; everything to bench/results/<time>.json.
 */
import { fork } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { arch, cpus, loadavg, platform, totalmem } from "node:os";
import { basename, dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { interopTool, streamingServer } from "@stan-ts/testing";
import { build } from "esbuild";
import {
  type JetStreamRun,
  renderJetStream,
  runJetStreamRounds,
  startJetStreamServer,
} from "./lib/jetstream.js";
import { findChild, processCpuUs } from "./lib/proc.js";
import { type Row, renderComparison, renderMarkdown, summarize } from "./lib/report.js";
import type { ClientName, FigureKind, FigureName, Job, Sample, WorkerReply } from "./lib/types.js";

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(benchDir, "..");
const workerSource = join(benchDir, "worker.ts");
const buildDir = join(benchDir, "results", ".build");

/** One figure: what is measured, by whom, with which counts. */
interface Figure {
  name: FigureName;
  title: string;
  kind: FigureKind;
  clients: ClientName[];
  count: number;
  smokeCount: number;
  size: number;
  window: number;
  rate: number;
}

const WINDOW = 16_384;
/** Channels are reused across rounds; these limits keep the servers' memory bounded. */
const SERVER_LIMITS = { maxMsgs: 100_000, maxBytes: 512 * 2 ** 20 };
const PEERS: ClientName[] = ["stan-ts", "node-nats-streaming"];
/** The official Go client, in the publish, sync and replay figures when interop/build.sh built it. */
const goTool = interopTool("go");
const GO: ClientName[] = goTool.missing ? [] : ["go"];
/** The clients that, against a binary, also publish to the embedded server (issue 6 point 4). */
const COMPARED: ClientName[] = ["node-nats-streaming", "stan-ts", "stan-raw"];

const FIGURES: Figure[] = [
  {
    name: "pub128",
    title: "async publish 128 B",
    kind: "throughput",
    clients: [...PEERS, ...GO, "stan-ts-batch", "nats", "stan-raw"],
    count: 100_000,
    smokeCount: 2_000,
    size: 128,
    window: WINDOW,
    rate: 0,
  },
  {
    name: "sync",
    title: "sync publish 128 B",
    kind: "latency",
    clients: [...PEERS, ...GO, "nats"],
    count: 5_000,
    smokeCount: 200,
    size: 128,
    window: 1,
    rate: 0,
  },
  {
    name: "replay",
    title: "replay 128 B",
    kind: "throughput",
    clients: [...PEERS, ...GO, "stan-raw"],
    count: 100_000,
    smokeCount: 2_000,
    size: 128,
    window: WINDOW,
    rate: 0,
  },
  {
    name: "e2e",
    title: "end-to-end latency 128 B",
    kind: "latency",
    clients: [...PEERS, "nats"],
    count: 6_000,
    smokeCount: 200,
    size: 128,
    window: WINDOW,
    rate: 2_000,
  },
  {
    name: "pub1k",
    title: "async publish 1 KiB",
    kind: "throughput",
    clients: [...PEERS, ...GO, "stan-ts-batch", "nats", "stan-raw"],
    count: 100_000,
    smokeCount: 1_000,
    size: 1024,
    window: WINDOW,
    rate: 0,
  },
  {
    name: "pub64k",
    title: "async publish 64 KiB",
    kind: "throughput",
    clients: [...PEERS, ...GO, "stan-ts-batch", "nats", "stan-raw"],
    count: 1_000,
    smokeCount: 100,
    size: 64 * 1024,
    window: WINDOW,
    rate: 0,
  },
];

/** A measurement as stored in the results file. */
interface Run {
  /** Set on the runs against the embedded server that a binary-mode run adds for comparison. */
  server?: "embedded";
  round: number;
  warmup: boolean;
  figure: FigureName;
  client: ClientName;
  sample: Sample;
}

function usage(): string {
  return [
    "usage: pnpm bench [--smoke] [--rounds N] [--only <figure>[,<figure>]] [--profile] [--node-flags='<flags for the client processes>']",
    `figures: ${FIGURES.map((f) => f.name).join(", ")}`,
    "server: embedded by default; NATS_STREAMING_SERVER=/path/to/binary or STAN_URL=nats://... (+ STAN_CLUSTER_ID)",
  ].join("\n");
}

function parse() {
  const { values } = parseArgs({
    options: {
      smoke: { type: "boolean", default: false },
      rounds: { type: "string" },
      only: { type: "string" },
      profile: { type: "boolean", default: false },
      "node-flags": { type: "string" },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${usage()}\n`);
    process.exit(0);
  }
  const rounds = values.rounds === undefined ? (values.smoke ? 1 : 5) : Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds: ${values.rounds}`);
  const only = values.only?.split(",").map((s) => s.trim());
  for (const o of only ?? []) {
    if (!FIGURES.some((f) => f.name === o))
      throw new Error(`--only: unknown figure "${o}"\n${usage()}`);
  }
  const nodeFlags = values["node-flags"]?.split(/\s+/).filter(Boolean) ?? [];
  return { smoke: values.smoke, rounds, only, profile: values.profile, nodeFlags };
}

const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

function describe(s: Sample, kind: FigureKind): string {
  const rss = `peak RSS ${(s.peakRss / 2 ** 20).toFixed(0)} MB`;
  if (kind === "throughput") {
    return `${Math.round(s.msgsPerSec ?? 0).toLocaleString("en-US")} msgs/s, ${rss}`;
  }
  return `p50 ${Math.round(s.p50Us ?? 0)} us, p99 ${Math.round(s.p99Us ?? 0)} us, ${rss}`;
}

/**
 * Bundles the worker and the workspace sources it imports (stan-ts from its TypeScript source,
 * as tsup would) into plain JavaScript, so the children run on plain `node`: no TypeScript
 * loader in their heap or on their clock. Each client is its own chunk, loaded only by its child;
 * `nats` and `node-nats-streaming` stay external (the installed packages).
 */
async function bundleWorker(): Promise<string> {
  await build({
    entryPoints: { worker: workerSource },
    outdir: buildDir,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    conditions: ["@stan-ts/source"],
    external: ["nats", "node-nats-streaming"],
    sourcemap: "linked",
    logLevel: "warning",
  });
  return join(buildDir, "worker.js");
}

let workerPath = "";
/** `--node-flags`: extra Node.js flags for every client process (e.g. --max-semi-space-size=1). */
let nodeFlags: string[] = [];

/** Runs one job in a child process. */
function runChild(job: Job, timeoutMs: number, profileDir: string | undefined): Promise<Sample> {
  const execArgv: string[] = [...nodeFlags];
  if (profileDir) {
    execArgv.push(
      "--cpu-prof",
      `--cpu-prof-dir=${profileDir}`,
      `--cpu-prof-name=${job.figure}-${job.client}-${job.clientId}.cpuprofile`,
    );
  }
  return new Promise((resolve, reject) => {
    const child = fork(workerPath, [JSON.stringify(job)], {
      cwd: repoRoot,
      execArgv,
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    let reply: WorkerReply | undefined;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${job.client} ${job.figure}: no result after ${timeoutMs} ms`));
    }, timeoutMs);
    child.on("message", (m) => {
      reply = m as WorkerReply;
    });
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (reply?.ok) resolve(reply.sample);
      else if (reply) reject(new Error(`${job.client} ${job.figure}: ${reply.error}`));
      else
        reject(
          new Error(`${job.client} ${job.figure}: exited (${code ?? signal}) without a result`),
        );
    });
  });
}

async function main(): Promise<void> {
  const opts = parse();
  nodeFlags = opts.nodeFlags;
  const figures = FIGURES.filter((f) => !opts.only || opts.only.includes(f.name));
  const started = new Date();
  const stamp = started.toISOString().replace(/[:.]/g, "-");
  const runId = started.getTime().toString(36);
  const resultsDir = join(benchDir, "results");
  mkdirSync(resultsDir, { recursive: true });
  const profileDir = opts.profile ? join(resultsDir, `profiles-${stamp}`) : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });

  let profiler: Session | undefined;
  if (profileDir) {
    profiler = new Session();
    profiler.connect();
    await profiler.post("Profiler.enable");
    await profiler.post("Profiler.start");
  }

  const t0 = performance.now();
  workerPath = await bundleWorker();
  log("bench: starting the streaming server");
  await using srv = await streamingServer(SERVER_LIMITS);
  const machine = {
    cpus: cpus().length,
    cpu: cpus()[0]?.model ?? "unknown",
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${platform()} ${arch()}`,
    loadAtStart: loadavg().map((l) => Number(l.toFixed(2))),
  };
  log(
    `bench: ${srv.mode} server at ${srv.url} (cluster ${srv.clusterId}); ${machine.cpus} x ${machine.cpu}, Node ${machine.node}`,
  );
  log(
    goTool.missing
      ? `bench: no Go column: ${goTool.missing}`
      : `bench: the official ${goTool.label} client too (${goTool.command})`,
  );

  // CPU time of the streaming server: this process when embedded, the binary's /proc entry.
  const binPid =
    srv.mode === "binary"
      ? findChild(basename(process.env.NATS_STREAMING_SERVER ?? ""))
      : undefined;
  const serverCpu = (): number | undefined => {
    if (srv.mode === "embedded") {
      const c = process.cpuUsage();
      return c.user + c.system;
    }
    return binPid === undefined ? undefined : processCpuUs(binPid);
  };

  // Against a binary, the embedded server runs too, for issue 6 point 4: node-nats-streaming's
  // publish throughput against both, alternating in the same rounds.
  let embedded: Awaited<ReturnType<typeof streamingServer>> | undefined;
  if (srv.mode === "binary" && !opts.smoke && figures.some((f) => f.name === "pub128")) {
    embedded = await streamingServer({ ...SERVER_LIMITS, mode: "embedded" });
    log(`bench: embedded server at ${embedded.url} too, for the server comparison`);
  }
  await using _embedded = embedded;

  const warmups = opts.smoke ? 0 : 1;
  const totalRounds = warmups + opts.rounds;
  const timeoutMs = opts.smoke ? 30_000 : 300_000;
  const runs: Run[] = [];
  let seq = 0;
  const job = (f: Figure, client: ClientName, subject: string, count: number): Job => ({
    client,
    figure: f.name,
    kind: f.kind,
    url: srv.url,
    clusterId: srv.clusterId,
    clientId: `bench-${runId}-${++seq}`,
    subject,
    count,
    size: f.size,
    window: f.window,
    rate: f.rate,
  });

  const replay = figures.find((f) => f.name === "replay");
  const replaySubject = `bench.${runId}.replay`;
  if (replay) {
    const n = opts.smoke ? replay.smokeCount : replay.count;
    log(`bench: storing ${n.toLocaleString("en-US")} messages for the replay test`);
    const pubFigure = { ...replay, name: "pub128" as const, kind: "throughput" as const };
    await runChild(job(pubFigure, "stan-raw", replaySubject, n), timeoutMs, undefined);
  }

  for (let round = 0; round < totalRounds; round++) {
    const warmup = round < warmups;
    const label = warmup ? "warm-up" : `round ${round - warmups + 1}/${opts.rounds}`;
    for (const f of figures) {
      const count = opts.smoke ? f.smokeCount : f.count;
      // Rotate the order each round: the client that runs first after the previous figure
      // pays for the server's clean-up of it (GC, dropped channels), so each takes that turn.
      const shift = round % f.clients.length;
      const order = [...f.clients.slice(shift), ...f.clients.slice(0, shift)];
      for (const client of order) {
        const subject = f.name === "replay" ? replaySubject : `bench.${runId}.${f.name}.${client}`;
        const cpu0 = serverCpu();
        const sample = await runChild(job(f, client, subject, count), timeoutMs, profileDir);
        const cpu1 = serverCpu();
        if (cpu0 !== undefined && cpu1 !== undefined) sample.serverCpuUs = cpu1 - cpu0;
        runs.push({ round, warmup, figure: f.name, client, sample });
        log(`[${label}] ${f.name.padEnd(6)} ${client.padEnd(19)} ${describe(sample, f.kind)}`);
      }
      if (embedded && f.name === "pub128") {
        for (const client of COMPARED) {
          const j = { ...job(f, client, `bench.${runId}.cmp.${client}`, count), url: embedded.url };
          j.clusterId = embedded.clusterId;
          const cpu0 = process.cpuUsage();
          const sample = await runChild(j, timeoutMs, undefined);
          const cpu = process.cpuUsage(cpu0);
          sample.serverCpuUs = cpu.user + cpu.system;
          runs.push({ server: "embedded", round, warmup, figure: f.name, client, sample });
          log(
            `[${label}] ${f.name.padEnd(6)} ${client.padEnd(19)} ${describe(sample, f.kind)} (embedded)`,
          );
        }
      }
    }
  }

  // Issue 13 point 5: stan-ts on JetStream beside raw nats JetStream (bench/lib/jetstream.ts).
  let jetstreamRuns: JetStreamRun[] = [];
  {
    const figureOf = (name: FigureName): Figure => FIGURES.find((f) => f.name === name) as Figure;
    await using js = await startJetStreamServer();
    log(`bench: JetStream (nats-server -js) at ${js.url}`);
    jetstreamRuns = await runJetStreamRounds({
      url: js.url,
      figures: figures.map((f) => f.name),
      rounds: opts.rounds,
      counts: (name) => (opts.smoke ? figureOf(name).smokeCount : figureOf(name).count),
      job: (name, client, subject, count) => job(figureOf(name), client, subject, count),
      run: (j) => runChild(j, timeoutMs, undefined),
      log,
      runId,
    });
  }

  if (profiler && profileDir) {
    const { profile } = await profiler.post("Profiler.stop");
    const file = join(profileDir, "server.cpuprofile");
    writeFileSync(file, JSON.stringify(profile));
    profiler.disconnect();
    log(`bench: server profile in ${relative(repoRoot, file)}`);
  }

  const measured = runs.filter((r) => !r.warmup && !r.server);
  const compared = runs.filter((r) => !r.warmup && r.server === "embedded");
  const rows: Row[] = summarize(
    figures.map((f) => ({
      name: f.name,
      title: f.title,
      kind: f.kind,
      count: opts.smoke ? f.smokeCount : f.count,
      size: f.size,
    })),
    measured,
  );
  const elapsedS = (performance.now() - t0) / 1000;
  const meta = {
    startedAt: started.toISOString(),
    command: `pnpm bench ${process.argv.slice(2).join(" ")}`.trim(),
    mode: srv.mode,
    server: srv.mode === "embedded" ? "@stan-ts/server (embedded, memory store)" : srv.url,
    machine,
    rounds: opts.rounds,
    warmupRounds: warmups,
    smoke: opts.smoke,
    window: WINDOW,
    elapsedS,
    loadAtEnd: loadavg().map((l) => Number(l.toFixed(2))),
  };
  const file = join(resultsDir, `${stamp}.json`);
  writeFileSync(file, `${JSON.stringify({ meta, figures, rows, runs, jetstreamRuns }, null, 2)}\n`);
  process.stdout.write(renderMarkdown(meta, rows));
  if (compared.length > 0) process.stdout.write(renderComparison(measured, compared));
  if (jetstreamRuns.length > 0) process.stdout.write(renderJetStream(measured, jetstreamRuns));
  log(`bench: done in ${elapsedS.toFixed(1)} s; results in ${relative(repoRoot, file)}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    log(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
