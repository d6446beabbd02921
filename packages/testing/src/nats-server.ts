import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Options for {@link startNatsServer}. */
export interface NatsServerOptions {
  /** Port to listen on; a free one is chosen by the server when omitted. */
  port?: number;
  /** Largest payload the server accepts, in bytes. @default 1048576 (nats-server's default) */
  maxPayload?: number;
  /** Extra configuration file text appended to the generated config. */
  config?: string;
  /** Milliseconds to wait for the server to report it is ready. @default 10000 */
  readyTimeout?: number;
  /** Path of the binary; falls back to NATS_SERVER_BIN, then `nats-server` on PATH. */
  bin?: string;
}

/** Raised when the nats-server binary is missing or will not start. */
export class HarnessError extends Error {
  override name = "HarnessError";
}

/** A running nats-server started by this harness. */
export interface NatsServer extends AsyncDisposable {
  /** `nats://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** PID of the current server process (changes on restart). */
  readonly pid: number;
  /** True while a server process is running. */
  readonly running: boolean;
  /** Graceful stop (SIGTERM), waits for the process to exit. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL, waits for the process to exit. */
  kill(): Promise<void>;
  /** Starts the server again on the same port (stopping it first if it runs). */
  restart(): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort for a test process that exits without disposing its servers.
  process.on("exit", () => {
    for (const child of live) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
  });
}

/** Resolves the nats-server binary or throws an actionable {@link HarnessError}. */
export function findNatsServer(bin?: string): string {
  const candidate = bin ?? process.env.NATS_SERVER_BIN ?? "nats-server";
  const probe = spawnSync(candidate, ["--version"], { encoding: "utf8" });
  if (probe.error || probe.status !== 0) {
    throw new HarnessError(
      `nats-server not found (tried "${candidate}"): apt-get install nats-server, or set NATS_SERVER_BIN`,
    );
  }
  return candidate;
}

/**
 * Starts a nats-server on 127.0.0.1 and waits until it accepts clients.
 *
 * Each server gets a watchdog (`sh` reading our stdin) that SIGKILLs it when this process dies
 * in any way, so a crashed or timed-out test never leaves a server behind.
 */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const bin = findNatsServer(options.bin);
  installExitHook();
  const dir = mkdtempSync(join(tmpdir(), "stan-ts-nats-"));
  const confPath = join(dir, "nats.conf");
  const lines = ["host: 127.0.0.1"];
  if (options.maxPayload !== undefined) lines.push(`max_payload: ${options.maxPayload}`);
  if (options.config) lines.push(options.config);
  writeFileSync(confPath, `${lines.join("\n")}\n`);
  const readyTimeout = options.readyTimeout ?? 10_000;

  let port = options.port ?? -1;
  let proc: ChildProcess | undefined;
  let watchdog: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const launch = async (): Promise<void> => {
    const child = spawn(bin, ["-c", confPath, "-a", "127.0.0.1", "-p", String(port)], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    live.add(child);
    exited = new Promise<void>((resolve) => {
      child.once("exit", () => {
        live.delete(child);
        resolve();
      });
    });
    const spawnError = new Promise<never>((_, reject) => {
      child.once("error", (err) => reject(new HarnessError(`nats-server failed: ${err.message}`)));
    });
    proc = child;
    if (child.pid !== undefined) {
      watchdog = spawn("sh", ["-c", `read _ ; kill -9 ${child.pid} 2>/dev/null`], {
        stdio: ["pipe", "ignore", "ignore"],
      });
      watchdog.unref();
    }
    let log = "";
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new HarnessError(`nats-server not ready after ${readyTimeout} ms:\n${log}`));
      }, readyTimeout);
      child.stderr?.setEncoding("utf8");
      const onData = (chunk: string) => {
        log += chunk;
        const m = /Listening for client connections on [^:\s]+:(\d+)/.exec(log);
        if (m?.[1]) port = Number(m[1]);
        if (log.includes("Server is ready")) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stderr?.on("data", onData);
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new HarnessError(`nats-server exited (${code ?? signal}) before ready:\n${log}`));
      });
    });
    try {
      await Promise.race([ready, spawnError]);
    } catch (err) {
      await terminate("SIGKILL");
      throw err;
    }
    // Keep draining stderr so the server never blocks on a full pipe.
    child.stderr?.resume();
  };

  const terminate = async (signal: NodeJS.Signals): Promise<void> => {
    const child = proc;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    // Disarm the watchdog first so it can never kill a recycled PID.
    watchdog?.kill("SIGKILL");
    watchdog = undefined;
    child.kill(signal);
    const done = exited;
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await done;
    clearTimeout(timer);
  };

  await launch();

  const server: NatsServer = {
    get url() {
      return `nats://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    get pid() {
      return proc?.pid ?? -1;
    },
    get running() {
      return !!proc && proc.exitCode === null && proc.signalCode === null;
    },
    stop: () => terminate("SIGTERM"),
    kill: () => terminate("SIGKILL"),
    restart: async () => {
      await terminate("SIGTERM");
      await launch();
    },
    [Symbol.asyncDispose]: async () => {
      await terminate("SIGTERM");
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}
