import { spawn } from "node:child_process";
import { interopTool } from "@stan-ts/testing";
import { quantileSorted } from "../lib/stats.js";
import type { ClientAdapter, Job, Sample } from "../lib/types.js";

/** What `stan-interop -mode bench` prints (interop/go/bench.go). */
interface GoResult {
  count: number;
  elapsedNs: number;
  cpuUs: number;
  startRss: number;
  maxRss: number;
  latUs?: number[];
}

/** Runs one measurement in the Go tool and returns its result line. */
function runGo(job: Job, figure: "pub" | "sync" | "replay"): Promise<GoResult> {
  const tool = interopTool("go");
  if (tool.missing) return Promise.reject(new Error(tool.missing));
  const args = [
    "-mode=bench",
    `-figure=${figure}`,
    `-url=${job.url}`,
    `-cluster=${job.clusterId}`,
    `-client=${job.clientId}`,
    `-subject=${job.subject}`,
    `-count=${job.count}`,
    `-size=${job.size}`,
    `-window=${Math.max(job.window, 1)}`,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(tool.command, [...tool.prefix, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (b: Buffer) => {
      out += b.toString();
    });
    child.stderr.on("data", (b: Buffer) => {
      err += b.toString();
    });
    child.once("error", reject);
    child.once("close", (code, signal) => {
      if (code !== 0) {
        reject(new Error(`stan-interop -mode bench exited with ${code ?? signal}: ${err.trim()}`));
        return;
      }
      resolve(JSON.parse(out.trim().split("\n").at(-1) ?? "{}") as GoResult);
    });
  });
}

/** The parts of a {@link Sample} every figure has, from the Go process's own accounting. */
function base(r: GoResult): Sample {
  return {
    peakRss: Math.max(r.maxRss, r.startRss),
    startRss: r.startRss,
    maxRss: r.maxRss,
    elapsedMs: r.elapsedNs / 1e6,
    count: r.count,
    cpuUs: r.cpuUs,
  };
}

/**
 * The official Go client (stan.go v0.10.4) through interop/go's bench mode, in its own process:
 * RSS and CPU are the Go process's (getrusage and /proc), the clock the Go program's.
 */
export const goClient: ClientAdapter = {
  async publish(job) {
    const r = await runGo(job, "pub");
    return { ...base(r), msgsPerSec: r.count / (r.elapsedNs / 1e9) };
  },

  async sync(job) {
    const r = await runGo(job, "sync");
    const sorted = Float64Array.from(r.latUs ?? []).sort();
    return {
      ...base(r),
      p50Us: quantileSorted(sorted, 0.5),
      p99Us: quantileSorted(sorted, 0.99),
      maxUs: sorted.length ? (sorted[sorted.length - 1] as number) : Number.NaN,
    };
  },

  async replay(job) {
    const r = await runGo(job, "replay");
    return { ...base(r), msgsPerSec: r.count / (r.elapsedNs / 1e9) };
  },
};
