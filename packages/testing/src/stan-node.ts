// One nats-streaming-server process of the cluster and FT harness (cluster.ts): started,
// killed (-9), stopped and started again on the same ports and store, its log tail kept for
// error messages, its monitoring endpoint read; and the polling helpers the harness waits with.
import { type ChildProcess, spawn } from "node:child_process";
import { createServer, type Server } from "node:net";
import { connect as natsConnect } from "nats";
import type { Serverz, StanNode } from "./cluster.js";
import { HarnessError } from "./nats-server.js";

export const POLL_MS = 25;
const LOG_TAIL = 16_384;

/** Distinct free TCP ports on 127.0.0.1 (held open together, so they differ, then released). */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const s = createServer();
      servers.push(s);
      await new Promise<void>((resolve, reject) => {
        s.once("error", reject);
        s.listen(0, "127.0.0.1", () => resolve());
      });
    }
    return servers.map((s) => {
      const a = s.address();
      if (a === null || typeof a === "string") throw new HarnessError("no port assigned");
      return a.port;
    });
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class Node implements StanNode {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private tail = "";
  private partial = "";
  /** True once its log says it serves clients (leader promotion done, or FT active). */
  serving = false;

  constructor(
    readonly id: string,
    private readonly bin: string,
    private readonly args: readonly string[],
    private readonly ports: { client: number; monitor: number; cluster: number },
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.ports.client}`;
  }
  get monitorUrl(): string {
    return `http://127.0.0.1:${this.ports.monitor}`;
  }
  get clusterUrl(): string {
    return `nats://127.0.0.1:${this.ports.cluster}`;
  }
  get running(): boolean {
    const c = this.child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }
  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  log(): string {
    return this.tail + this.partial;
  }

  private onLine(line: string): void {
    if (line.includes("finished leader promotion actions")) this.serving = true;
    else if (line.includes("server lost leadership")) this.serving = false;
    else if (line.includes("Streaming Server is ready")) this.serving = true;
  }

  private onData(chunk: string): void {
    const lines = (this.partial + chunk).split("\n");
    this.partial = lines.pop() ?? "";
    for (const line of lines) this.onLine(line);
    this.tail = (this.tail + lines.map((l) => `${l}\n`).join("")).slice(-LOG_TAIL);
  }

  async start(readyTimeout = 15_000): Promise<void> {
    if (this.running) throw new HarnessError(`node ${this.id} is already running`);
    this.serving = false;
    this.tail += `--- start ${this.bin} ${this.args.join(" ")}\n`;
    const child = spawn(this.bin, [...this.args], { stdio: ["ignore", "ignore", "pipe"] });
    this.child = child;
    // Dies with this process however it ends: `read` returns when our end of the pipe closes.
    // Disarmed on the child's exit, so it can never kill a recycled PID.
    let watchdog: ChildProcess | undefined =
      child.pid === undefined
        ? undefined
        : spawn("sh", ["-c", `read _ ; kill -9 ${child.pid} 2>/dev/null`], {
            stdio: ["pipe", "ignore", "ignore"],
          });
    watchdog?.unref();
    let startError: Error | undefined;
    child.once("error", (e) => {
      startError = e;
    });
    this.exited = new Promise<void>((resolve) => {
      child.once("close", () => {
        watchdog?.kill("SIGKILL");
        watchdog = undefined;
        resolve();
      });
    });
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (c: string) => this.onData(c));
    const deadline = Date.now() + readyTimeout;
    for (;;) {
      if (startError) throw new HarnessError(`${this.bin}: ${startError.message}`);
      if (child.exitCode !== null || child.signalCode !== null) {
        await this.exited; // its whole log read (the reason it exited is at the end)
        throw new HarnessError(
          `node ${this.id} exited (${child.exitCode ?? child.signalCode}) while starting:\n${this.log()}`,
        );
      }
      if ((await this.serverz()) !== undefined) return;
      if (Date.now() > deadline) {
        await this.kill();
        throw new HarnessError(
          `node ${this.id}: monitoring ${this.monitorUrl} not answering after ${readyTimeout} ms:\n${this.log()}`,
        );
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  private async signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    child.kill(signal);
    const timer = signal === "SIGKILL" ? undefined : setTimeout(() => child.kill("SIGKILL"), 5_000);
    await this.exited;
    clearTimeout(timer);
    this.serving = false;
  }

  kill(): Promise<void> {
    return this.signal("SIGKILL");
  }

  stop(): Promise<void> {
    return this.signal("SIGTERM");
  }

  async serverz(): Promise<Serverz | undefined> {
    if (!this.running) return undefined;
    try {
      const res = await fetch(`${this.monitorUrl}/streaming/serverz`, {
        signal: AbortSignal.timeout(1_000),
      });
      if (!res.ok) return undefined;
      return (await res.json()) as Serverz;
    } catch {
      return undefined;
    }
  }
}

/**
 * True when a request sent through `node`'s NATS reaches the streaming server that serves
 * clients: an empty connect request to `_STAN.discover.<clusterId>` gets the server's answer
 * (an error: no client ID; nothing is registered). False while the routes, or the interest
 * they carry, are not yet in place.
 */
export async function reachesServer(node: Node, clusterId: string): Promise<boolean> {
  try {
    const nc = await natsConnect({ servers: node.url, reconnect: false, timeout: 1_000 });
    try {
      await nc.request(`_STAN.discover.${clusterId}`, new Uint8Array(0), { timeout: 500 });
      return true;
    } finally {
      await nc.close();
    }
  } catch {
    return false;
  }
}

/** Polls `probe` every 25 ms until it returns a value; throws with `describe()` at the deadline. */
export async function pollUntil<T>(
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  describe: () => Promise<string>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new HarnessError(await describe());
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

export async function describeNodes(
  nodes: readonly Node[],
  what: string,
  ms: number,
): Promise<string> {
  const parts = await Promise.all(
    nodes.map(async (n) => {
      const z = n.running ? await n.serverz() : undefined;
      const state = !n.running
        ? "not running"
        : z
          ? `${z.state}${z.role ? `/${z.role}` : ""}${n.serving ? " serving" : ""}`
          : "not answering";
      return `node ${n.id} (${n.url}): ${state}\n${n.log().slice(-2_000)}`;
    }),
  );
  return `timed out after ${ms} ms waiting for ${what}:\n${parts.join("\n")}`;
}
