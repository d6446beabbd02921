/**
 * Start-up of the built `stan-server` (packages/server/dist/bin.cjs), as a client harness sees
 * it: each run spawns the bin on a free fixed port (`-p`), probes the port with a TCP connect
 * retried every millisecond and sends a raw STAN ConnectRequest at the first accepted
 * connection (re-sent on each "no responders"), then stops the server with SIGTERM. Prints
 * median and p90 of: port accepts, the engine answers the ConnectRequest, exit after SIGTERM
 * (all ms from the spawn call). With NATS_STREAMING_SERVER set, the official binary runs in the
 * same rounds; `node -e 0` and a plain nats-server give the floor. Then, in this process, what
 * a test suite pays per test file: `startServer()` + `close()`, with its own nats-server and
 * on one shared nats-server (`natsServer`).
 *
 *   pnpm build && pnpm exec tsx bench/startup.ts [--runs 20] [--store memory|file] [-- extra bin args]
 *
 * @packageDocumentation
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startNatsServer, startServer } from "@stan-ts/server";
import { freePort } from "../packages/server/test/bin-lifecycle.js";
import { probeConnect, probePort } from "../packages/server/test/probe.js";

const { values, positionals } = parseArgs({
  options: {
    runs: { type: "string", default: "20" },
    store: { type: "string", default: "memory" },
    bin: { type: "string" },
  },
  allowPositionals: true,
});
const runs = Number(values.runs);
const bin =
  values.bin ?? fileURLToPath(new URL("../packages/server/dist/bin.cjs", import.meta.url));

interface Sample {
  port: number;
  engine: number;
  /** CPU time of the server's main thread until the engine answered (schedstat, ns resolution). */
  cpu: number;
  exit: number;
}

/** CPU time (ms) of `pid`'s main thread so far, from /proc/<pid>/task/<pid>/schedstat. */
function mainThreadCpuMs(pid: number | undefined): number {
  try {
    return Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, "utf8").split(" ")[0]) / 1e6;
  } catch {
    return Number.NaN;
  }
}

interface Subject {
  name: string;
  /** Command and arguments for a server on `port` with a file store in `dir` when asked. */
  argv(port: number, dir: string | undefined): string[];
  /** False for servers without a streaming engine. */
  streaming: boolean;
  /** The port is not given: read it from the "listening" line (the first sign of life then). */
  freePort?: boolean;
}

const subjects: Subject[] = [
  {
    name: "node -e 0 (exit)",
    argv: () => [process.execPath, "-e", "0"],
    streaming: false,
  },
  {
    name: "nats-server alone",
    argv: (port) => [
      process.env.NATS_SERVER_BIN ?? "nats-server",
      "-a",
      "127.0.0.1",
      "-p",
      `${port}`,
    ],
    streaming: false,
  },
  {
    name: "stan-server (dist/bin.cjs)",
    argv: (port, dir) => [
      process.execPath,
      bin,
      "-p",
      `${port}`,
      ...(dir ? ["-store", "file", "-dir", dir] : []),
      ...positionals,
    ],
    streaming: true,
  },
  {
    name: "stan-server, free port",
    argv: (_port, dir) => [
      process.execPath,
      bin,
      ...(dir ? ["-store", "file", "-dir", dir] : []),
      ...positionals,
    ],
    streaming: true,
    freePort: true,
  },
];
const official = process.env.NATS_STREAMING_SERVER;
if (official) {
  subjects.push({
    name: "nats-streaming-server 0.25.6",
    argv: (port, dir) => [
      official,
      "-a",
      "127.0.0.1",
      "-p",
      `${port}`,
      ...(dir ? ["-store", "file", "-dir", dir] : []),
    ],
    streaming: true,
  });
}

async function once(subject: Subject): Promise<Sample> {
  const port = await freePort();
  const dir = values.store === "file" ? mkdtempSync(join(tmpdir(), "stan-startup-")) : undefined;
  const [cmd, ...args] = subject.argv(port, dir);
  const t0 = performance.now();
  const child = spawn(cmd!, args, {
    stdio: ["ignore", "ignore", subject.freePort ? "pipe" : "ignore"],
  });
  const exited = new Promise<number>((r) => child.once("exit", () => r(performance.now())));
  try {
    if (subject.name.startsWith("node -e")) {
      const end = await exited;
      return { port: Number.NaN, engine: Number.NaN, cpu: Number.NaN, exit: end - t0 };
    }
    let portAt: number;
    let engine: Awaited<ReturnType<typeof probeConnect>> | undefined;
    if (subject.freePort) {
      const listening = await listeningLine(child);
      portAt = listening.at - t0;
      engine = await probeConnect(listening.port, t0);
    } else {
      [portAt, engine] = await Promise.all([
        probePort(port, t0),
        subject.streaming ? probeConnect(port, t0) : undefined,
      ]);
    }
    const cpu = mainThreadCpuMs(child.pid);
    const t1 = performance.now();
    child.kill("SIGTERM");
    const end = await exited;
    return { port: portAt, engine: engine?.answered ?? Number.NaN, cpu, exit: end - t1 };
  } finally {
    child.kill("SIGKILL");
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

/** The port in the bin's "listening" line, and when (performance.now()) it was read. */
function listeningLine(child: ChildProcess): Promise<{ port: number; at: number }> {
  return new Promise((resolve, reject) => {
    let log = "";
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (c: string) => {
      log += c;
      const m = /"msg":"listening","url":"nats:\/\/[^:]+:(\d+)"/.exec(log);
      if (m) resolve({ port: Number(m[1]), at: performance.now() });
    });
    child.once("exit", () => reject(new Error(`exited before listening:\n${log}`)));
  });
}

function pct(xs: number[], p: number): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!;
}

const fmt = (x: number) => (Number.isNaN(x) ? "-" : x.toFixed(1));
const results = new Map<string, Sample[]>(subjects.map((s) => [s.name, []]));
// one warm-up run each (page cache, compile cache), then the runs, subjects interleaved
for (const s of subjects) await once(s);
for (let i = 0; i < runs; i++) {
  for (const s of subjects) results.get(s.name)!.push(await once(s));
  process.stderr.write(".");
}
process.stderr.write("\n");
console.log(
  `start-up, ${runs} runs, store ${values.store}, ms from spawn (median / p90); exit: ms from SIGTERM\n`,
);
console.log(
  "| server | port accepts | engine answers connect | main-thread CPU until then | exit after SIGTERM |",
);
console.log("|---|---:|---:|---:|---:|");
for (const [name, xs] of results) {
  const col = (k: keyof Sample) =>
    `${fmt(
      pct(
        xs.map((x) => x[k]),
        0.5,
      ),
    )} / ${fmt(
      pct(
        xs.map((x) => x[k]),
        0.9,
      ),
    )}`;
  console.log(`| ${name} | ${col("port")} | ${col("engine")} | ${col("cpu")} | ${col("exit")} |`);
}

// startServer() in a test suite: start + close per test file, in this process
const inProcess = new Map<string, { start: number[]; stop: number[] }>([
  ["startServer(): own nats-server", { start: [], stop: [] }],
  ["startServer({ natsServer }): shared nats-server", { start: [], stop: [] }],
]);
const shared = await startNatsServer();
const dirFor = () =>
  values.store === "file"
    ? { store: "file" as const, dir: mkdtempSync(join(tmpdir(), "stan-startup-")) }
    : {};
for (let i = 0; i <= runs; i++) {
  for (const [name, xs] of inProcess) {
    const store = dirFor();
    const t0 = performance.now();
    const server = await startServer({
      logLevel: "silent",
      ...store,
      ...(name.includes("shared") ? { natsServer: shared } : {}),
    });
    const t1 = performance.now();
    await server.close();
    const t2 = performance.now();
    if ("dir" in store) rmSync(store.dir, { recursive: true, force: true });
    if (i === 0) continue; // warm-up
    xs.start.push(t1 - t0);
    xs.stop.push(t2 - t1);
  }
}
await shared.stop();
console.log(`\nstartServer() per test file, ${runs} runs, in-process, ms (median / p90)\n`);
console.log("| | start | close | start + close |");
console.log("|---|---:|---:|---:|");
for (const [name, xs] of inProcess) {
  const both = xs.start.map((x, i) => x + xs.stop[i]!);
  const col = (v: number[]) => `${fmt(pct(v, 0.5))} / ${fmt(pct(v, 0.9))}`;
  console.log(`| ${name} | ${col(xs.start)} | ${col(xs.stop)} | ${col(both)} |`);
}
