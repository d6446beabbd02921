/**
 * `pnpm bench:server`: the official node-nats-streaming client publishes 100,000 messages of
 * 128 bytes (window of 16,384 unacknowledged) to a stan-server process, then replays them.
 * Reports messages/s and the server's peak RSS, for the memory and the file store.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import stan from "node-nats-streaming";

const N = Number(process.env.BENCH_MSGS ?? 100_000);
const WINDOW = 16_384;
const bin = fileURLToPath(new URL("../src/bin.ts", import.meta.url));

function startServerProcess(args: string[]): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "--conditions=@stan-ts/source", bin, "-l", "warn", ...args],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  return new Promise((resolve, reject) => {
    let log = "";
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (s: string) => {
      log += s;
      const m = /"listening","url":"([^"]+)"/.exec(log);
      if (m?.[1]) resolve({ child, url: m[1] });
    });
    child.once("exit", (code) => reject(new Error(`server exited ${code}: ${log}`)));
  });
}

function peakRssMB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const m = /VmHWM:\s+(\d+) kB/.exec(status);
  return m?.[1] ? Math.round(Number(m[1]) / 1024) : -1;
}

async function run(store: "memory" | "file"): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "stan-bench-"));
  const { child, url } = await startServerProcess(["-store", store, "-dir", dir, "-mm", "0"]);
  try {
    const sc = stan.connect("test-cluster", `bench-${store}`, { url, maxPubAcksInflight: WINDOW });
    await new Promise((r) => sc.once("connect", r));
    const payload = Buffer.alloc(128, 97);
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => {
      let sent = 0;
      let acked = 0;
      const pump = (): void => {
        while (sent < N && sent - acked < WINDOW) {
          sent++;
          sc.publish("bench", payload, (err) => {
            if (err) return reject(err);
            acked++;
            if (acked === N) resolve();
            else if (sent - acked <= WINDOW / 2) pump();
          });
        }
      };
      pump();
    });
    const t1 = performance.now();
    const opts = sc.subscriptionOptions().setDeliverAllAvailable().setMaxInFlight(WINDOW);
    const sub = sc.subscribe("bench", opts);
    await new Promise<void>((resolve) => {
      let got = 0;
      sub.on("message", () => {
        if (++got === N) resolve();
      });
    });
    const t2 = performance.now();
    const rss = peakRssMB(child.pid ?? 0);
    console.log(
      `${store.padEnd(6)} publish ${Math.round(N / ((t1 - t0) / 1000))} msg/s, replay ${Math.round(N / ((t2 - t1) / 1000))} msg/s, server peak RSS ${rss} MB`,
    );
    await new Promise<void>((r) => {
      sc.once("close", () => r());
      sc.close();
    });
  } finally {
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(
  `node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? "cpu"}, ${N} msgs of 128 B`,
);
for (const store of ["memory", "file"] as const) await run(store);
process.exit(0);
