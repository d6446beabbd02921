import { getHeapSpaceStatistics } from "node:v8";
import { quantileSorted } from "./stats.js";
import type { Meter, Sample } from "./types.js";

/** Every this many ms the sampler reads RSS (when the event loop lets it). */
const SAMPLE_EVERY_MS = 5;

/** A {@link Meter} for the current process: RSS sampled by a timer, a monotonic clock. */
export function createMeter(): Meter {
  let peak = 0;
  let startRss = 0;
  let t0 = 0;
  let t1 = 0;
  let cpu0: NodeJS.CpuUsage = { user: 0, system: 0 };
  let cpu: NodeJS.CpuUsage = { user: 0, system: 0 };
  let timer: ReturnType<typeof setInterval> | undefined;
  let heapAtPeak: Sample["heapAtPeak"];
  const sample = (): void => {
    const rss = process.memoryUsage.rss();
    if (rss > peak) {
      peak = rss;
      // what the peak is made of (read only when a new peak is seen: this walks the heap spaces)
      const m = process.memoryUsage();
      const space = (name: string) =>
        getHeapSpaceStatistics().find((x) => x.space_name === name)?.space_size ?? 0;
      heapAtPeak = {
        heapTotal: m.heapTotal,
        heapUsed: m.heapUsed,
        external: m.external,
        newSpace: space("new_space"),
        oldSpace: space("old_space"),
      };
    }
  };
  const base = (count: number): Sample => ({
    peakRss: peak,
    heapAtPeak,
    startRss,
    maxRss: process.resourceUsage().maxRSS * 1024,
    elapsedMs: t1 - t0,
    count,
    cpuUs: cpu.user + cpu.system,
  });
  return {
    start() {
      startRss = process.memoryUsage.rss();
      peak = startRss;
      timer = setInterval(sample, SAMPLE_EVERY_MS);
      cpu0 = process.cpuUsage();
      t0 = performance.now();
    },
    stop() {
      t1 = performance.now();
      cpu = process.cpuUsage(cpu0);
      sample();
      if (timer) clearInterval(timer);
      timer = undefined;
    },
    sample,
    throughput(count) {
      return { ...base(count), msgsPerSec: count / ((t1 - t0) / 1000) };
    },
    latency(latenciesUs, count) {
      const sorted = Float64Array.from(latenciesUs).sort();
      return {
        ...base(count),
        p50Us: quantileSorted(sorted, 0.5),
        p99Us: quantileSorted(sorted, 0.99),
        maxUs: sorted.length ? (sorted[sorted.length - 1] as number) : Number.NaN,
      };
    },
  };
}

/** A payload of `size` bytes (not all zeros, so nothing compresses it away). */
export function payload(size: number): Uint8Array {
  const p = new Uint8Array(size);
  for (let i = 0; i < size; i++) p[i] = 97 + (i % 26);
  return p;
}

/** Resolves after the event loop had a chance to run timers and I/O. */
export function tick(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

/** Waits `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Drives a paced publisher: calls `send(i)` so that `rate` messages per second go out, from
 * i = 0 to count - 1, catching up after timer lateness. Resolves after the last send.
 */
export async function paced(count: number, rate: number, send: (i: number) => void): Promise<void> {
  const t0 = performance.now();
  let i = 0;
  while (i < count) {
    const due = Math.min(count, Math.floor(((performance.now() - t0) * rate) / 1000) + 1);
    while (i < due) send(i++);
    if (i < count) await sleep(1);
  }
}
