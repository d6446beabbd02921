import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Options for {@link spawnNatsServer} (exported as `startNatsServer`). */
export interface NatsChildOptions {
  /** Path of the nats-server binary. @default `NATS_SERVER_BIN`, else `nats-server` on PATH */
  bin?: string;
  /**
   * Port to listen on (`-p`); {@link NatsChild.restart} listens on the same port again.
   * @default a free port, chosen by nats-server
   */
  port?: number;
  /** Milliseconds to wait for the server to report that it is ready. @default 10000 */
  readyTimeout?: number;
  /**
   * nats-server configuration text (for example `authorization { ... }` or `max_payload: 2MB`),
   * written to a temporary file passed with `-c`; the file is removed when the process exits.
   * The listen address (127.0.0.1) and the port are set on the command line, which wins.
   */
  config?: string;
  /**
   * More nats-server command-line arguments, after the ones set here (for example `["-DV"]`).
   * Keep the log on stderr: readiness is read from it.
   */
  args?: readonly string[];
}

/** A nats-server child process started by {@link spawnNatsServer}; `await using` stops it. */
export interface NatsChild extends AsyncDisposable {
  /** `nats://127.0.0.1:<port>` (the `-a` address instead, when `args` names one that is not a wildcard) */
  readonly url: string;
  /** The port it listens on, kept across {@link NatsChild.restart}. */
  readonly port: number;
  /** PID of the current process (a new one after a restart). */
  readonly pid: number;
  /** True while the process runs. */
  readonly running: boolean;
  /** SIGTERM (SIGKILL after 5 s), waits for exit. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL, as `kill -9` would, and waits for exit. Idempotent. */
  kill(): Promise<void>;
  /**
   * Stops the process if it runs (as {@link NatsChild.stop} does), then starts a new one on
   * the same port with the same options and waits until it is ready.
   */
  restart(): Promise<void>;
}

/** One started nats-server process. */
interface Launched {
  readonly child: ChildProcess;
  /** The host clients on this machine reach it on (127.0.0.1 unless `-a` names another address). */
  readonly host: string;
  readonly port: number;
  /** Sends `signal` (SIGKILL after 5 s) and waits for exit; a no-op once it has exited. */
  terminate(signal: NodeJS.Signals): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHooked = false;

/** Last resort for a process that exits without stopping its servers. */
function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.on("exit", () => {
    for (const child of live) child.kill("SIGKILL");
  });
}

function binary(bin: string | undefined): string {
  return bin ?? process.env.NATS_SERVER_BIN ?? "nats-server";
}

function notFound(bin: string): Error {
  return new Error(
    `nats-server not found (tried "${bin}"): apt-get install nats-server, or set NATS_SERVER_BIN`,
  );
}

/**
 * Resolves the nats-server binary (`bin`, else `NATS_SERVER_BIN`, else `nats-server` on PATH)
 * by running it with `--version`, and returns it.
 *
 * @throws Error saying how to install it when it is missing or does not run.
 */
export function findNatsServer(bin?: string): string {
  const candidate = binary(bin);
  const probe = spawnSync(candidate, ["--version"], { encoding: "utf8" });
  if (probe.error || probe.status !== 0) throw notFound(candidate);
  return candidate;
}

/**
 * Starts `nats-server` on 127.0.0.1 and waits for it to accept clients; a free port unless
 * `port` is given. A watchdog shell reading our stdin pipe SIGKILLs the server when this
 * process dies in any way (even by SIGKILL), so the server never outlives it. Exported as
 * `startNatsServer` for tests and examples that need NATS to outlive a streaming server.
 *
 * @throws Error when the binary is missing (saying how to install it), or when the server
 * exits or is not ready within `readyTimeout` (with its log).
 */
export async function spawnNatsServer(opts: NatsChildOptions = {}): Promise<NatsChild> {
  const bin = binary(opts.bin);
  let port = opts.port ?? -1;
  let current = await launch(bin, port, opts);
  port = current.port;
  const terminate = (signal: NodeJS.Signals) => current.terminate(signal);
  return {
    get url() {
      return `nats://${current.host}:${port}`;
    },
    get port() {
      return port;
    },
    get pid() {
      return current.child.pid ?? -1;
    },
    get running() {
      return current.child.exitCode === null && current.child.signalCode === null;
    },
    stop: () => terminate("SIGTERM"),
    kill: () => terminate("SIGKILL"),
    restart: async () => {
      await terminate("SIGTERM");
      current = await launch(bin, port, opts);
    },
    [Symbol.asyncDispose]: () => terminate("SIGTERM"),
  };
}

async function launch(bin: string, port: number, opts: NatsChildOptions): Promise<Launched> {
  hookExit();
  const args = ["-a", "127.0.0.1", "-p", String(port)];
  let confDir: string | undefined;
  if (opts.config !== undefined) {
    confDir = mkdtempSync(join(tmpdir(), "stan-ts-nats-"));
    const confFile = join(confDir, "nats.conf");
    writeFileSync(confFile, `${opts.config}\n`);
    args.unshift("-c", confFile);
  }
  const removeConf = () => {
    if (confDir) rmSync(confDir, { recursive: true, force: true });
  };
  const child = spawn(bin, [...args, ...(opts.args ?? [])], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  if (child.pid === undefined) {
    // Not started: Node emits "error" (and no "exit").
    const [err] = (await once(child, "error")) as [NodeJS.ErrnoException];
    removeConf();
    throw err.code === "ENOENT"
      ? notFound(bin)
      : new Error(`cannot start nats-server ("${bin}"): ${err.message}`);
  }
  live.add(child);
  // The watchdog: `read` returns when our end of its stdin closes, i.e. when we die.
  let watchdog: ChildProcess | undefined = spawn(
    "sh",
    ["-c", `read _ ; kill -9 ${child.pid} 2>/dev/null`],
    { stdio: ["pipe", "ignore", "ignore"] },
  );
  watchdog.unref();
  // Disarmed before signalling and on exit, so it can never kill a recycled PID.
  const disarm = () => {
    watchdog?.kill("SIGKILL");
    watchdog = undefined;
  };
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => {
      disarm();
      live.delete(child);
      removeConf();
      resolve();
    }),
  );
  const terminate = async (signal: NodeJS.Signals): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    disarm();
    child.kill(signal);
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    const ready = await readiness(child, opts.readyTimeout ?? 10_000);
    return { child, host: ready.host, port: ready.port, terminate };
  } catch (err) {
    await terminate("SIGKILL");
    throw err;
  }
}

/** Where a local client reaches a server listening on `host`: loopback for a wildcard address. */
function clientHost(host: string): string {
  return host === "0.0.0.0" || host === "[::]" || host === "::" ? "127.0.0.1" : host;
}

/** Resolves with the client address once the log on stderr says the server is ready. */
function readiness(child: ChildProcess, timeout: number): Promise<{ host: string; port: number }> {
  const stderr = child.stderr!;
  return new Promise<{ host: string; port: number }>((resolve, reject) => {
    let log = "";
    let host = "127.0.0.1";
    let port = 0;
    const settle = (err?: Error) => {
      clearTimeout(timer);
      stderr.off("data", onData);
      child.off("close", onClose);
      // Keep draining stderr so the server never blocks on a full pipe.
      stderr.resume();
      if (err) reject(err);
      else resolve({ host, port });
    };
    const onData = (chunk: string) => {
      log += chunk;
      const m = /Listening for client connections on (\S+):(\d+)/.exec(log);
      if (m?.[1] && m[2]) {
        host = clientHost(m[1]);
        port = Number(m[2]);
      }
      if (log.includes("Server is ready")) settle();
    };
    // "close" rather than "exit": the whole log has been read by then.
    const onClose = (code: number | null, signal: NodeJS.Signals | null) =>
      settle(new Error(`nats-server exited (${code ?? signal}) before ready:\n${log}`));
    const timer = setTimeout(
      () => settle(new Error(`nats-server not ready after ${timeout} ms:\n${log}`)),
      timeout,
    );
    stderr.setEncoding("utf8");
    stderr.on("data", onData);
    child.once("close", onClose);
  });
}
