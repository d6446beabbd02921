import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server, connect as tcpConnect } from "node:net";
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
  /**
   * Hold back the monitoring endpoint until {@link NatsChild.openMonitor}: a `-m`/`--http_port`
   * or `-ms`/`--https_port` in `args` makes nats-server monitor on a private free port, and
   * the port asked for is opened by this process, forwarding each connection there, only
   * when `openMonitor()` is called (the streaming server calls it once its engine answers).
   * @default false
   */
  holdMonitor?: boolean;
}

/** A nats-server child process started by {@link spawnNatsServer}; `await using` stops it. */
export interface NatsChild extends AsyncDisposable {
  /** `nats://127.0.0.1:<port>` (the `-a` address instead, when `args` names one that is not a wildcard) */
  readonly url: string;
  /** The port it listens on, kept across {@link NatsChild.restart}. */
  readonly port: number;
  /**
   * The port of its monitoring endpoint (`-m`/`--http_port`, `-ms`/`--https_port` in `args`),
   * as it logged it; undefined without one.
   */
  readonly monitorPort: number | undefined;
  /**
   * Opens the monitoring port(s) held back by `holdMonitor` (a no-op without): from now on
   * each connection to the port asked for is forwarded to nats-server's private one.
   * Idempotent; {@link NatsChild.stop} closes them first.
   */
  openMonitor(): Promise<void>;
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
  readonly monitorPort: number | undefined;
  readonly monitorPorts: MonitorPorts;
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
export async function spawnNatsServer(options: NatsChildOptions = {}): Promise<NatsChild> {
  const bin = binary(options.bin);
  const held = options.holdMonitor ? holdMonitorArgs(options.args ?? []) : undefined;
  const opts = held ? { ...options, args: held.args } : options;
  let port = opts.port ?? -1;
  let current = await launch(bin, port, opts);
  port = current.port;
  const fronts: Server[] = [];
  let opened: Promise<void> | undefined;
  const closeFronts = () =>
    Promise.all(fronts.splice(0).map((f) => new Promise<void>((r) => f.close(() => r()))));
  const terminate = async (signal: NodeJS.Signals) => {
    await closeFronts();
    await current.terminate(signal);
  };
  return {
    get url() {
      return `nats://${current.host}:${port}`;
    },
    get port() {
      return port;
    },
    get monitorPort() {
      return held?.ports[0]?.port ?? current.monitorPort;
    },
    openMonitor: () => {
      opened ??= (async () => {
        for (const want of held?.ports ?? []) {
          const target = () => current.monitorPorts[want.tls ? "https" : "http"];
          if (target() === undefined) continue;
          fronts.push(await forward(held!.host, want.port, target));
        }
      })();
      return opened;
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
      // the monitoring fronts stay: they forward to whatever port the new process monitors on
      await current.terminate("SIGTERM");
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
    return { child, ...ready, terminate };
  } catch (err) {
    await terminate("SIGKILL");
    throw err;
  }
}

/** Where a local client reaches a server listening on `host`: loopback for a wildcard address. */
function clientHost(host: string): string {
  return host === "0.0.0.0" || host === "[::]" || host === "::" ? "127.0.0.1" : host;
}

/**
 * Resolves with the client address (and the monitoring port, if any) once the log on stderr
 * says the server is ready. Event-driven: nats-server writes "Server is ready" right after its
 * client listener is up, and the line arrives here with no polling interval in between.
 */
function readiness(
  child: ChildProcess,
  timeout: number,
): Promise<{
  host: string;
  port: number;
  monitorPort: number | undefined;
  monitorPorts: MonitorPorts;
}> {
  const stderr = child.stderr!;
  return new Promise((resolve, reject) => {
    let log = "";
    let host = "127.0.0.1";
    let port = 0;
    let monitorPort: number | undefined;
    const monitorPorts: MonitorPorts = {};
    const settle = (err?: Error) => {
      clearTimeout(timer);
      stderr.off("data", onData);
      child.off("close", onClose);
      // Keep draining stderr so the server never blocks on a full pipe.
      stderr.resume();
      if (err) reject(err);
      else resolve({ host, port, monitorPort, monitorPorts });
    };
    const onData = (chunk: string) => {
      log += chunk;
      const m = /Listening for client connections on (\S+):(\d+)/.exec(log);
      if (m?.[1] && m[2]) {
        host = clientHost(m[1]);
        port = Number(m[2]);
      }
      for (const mon of log.matchAll(/Starting (https?) monitor on \S*:(\d+)/g)) {
        monitorPort ??= Number(mon[2]);
        monitorPorts[mon[1] as "http" | "https"] = Number(mon[2]);
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

/** nats-server's monitoring ports as it logged them. */
interface MonitorPorts {
  http?: number;
  https?: number;
}

/** What {@link holdMonitorArgs} took out of nats-server's arguments. */
interface HeldMonitor {
  /** The arguments with each monitoring port replaced by -1 (a free port). */
  args: string[];
  /** The ports asked for: opened by {@link NatsChild.openMonitor}. */
  ports: { port: number; tls: boolean }[];
  /** The host they listen on: nats-server's `-a`/`--addr`/`--net`, else 127.0.0.1. */
  host: string;
}

const MONITOR_FLAGS: Record<string, boolean> = {
  m: false,
  http_port: false,
  ms: true,
  https_port: true,
};

/** Rewrites `-m P` / `--https_port=P` etc. to a free port and returns the ports asked for. */
function holdMonitorArgs(args: readonly string[]): HeldMonitor {
  const out: string[] = [];
  const ports: HeldMonitor["ports"] = [];
  let host = "127.0.0.1";
  for (let i = 0; i < args.length; i++) {
    const raw = args[i]!;
    const eq = raw.indexOf("=");
    const dash = raw.startsWith("--") ? "--" : "-";
    const name = (eq >= 0 ? raw.slice(0, eq) : raw).replace(/^--?/, "");
    const value = eq >= 0 ? raw.slice(eq + 1) : args[i + 1];
    if (name === "a" || name === "addr" || name === "net") {
      if (value !== undefined) host = value;
    }
    const tls = MONITOR_FLAGS[name];
    const port = Number(value);
    if (tls === undefined || !Number.isInteger(port) || port <= 0) {
      out.push(raw);
      continue;
    }
    ports.push({ port, tls });
    out.push(`${dash}${name}=-1`);
    if (eq < 0) i++;
  }
  return { args: out, ports, host };
}

/**
 * Listens on host:`port` and pipes each connection to nats-server's current monitoring port
 * (`target()`: a restart may have moved it); TLS passes through untouched.
 */
function forward(host: string, port: number, target: () => number | undefined): Promise<Server> {
  const upstreamHost = host === "0.0.0.0" || host === "::" || host === "" ? "127.0.0.1" : host;
  return new Promise((resolve, reject) => {
    const front = createServer((socket) => {
      const upstream = tcpConnect({ host: upstreamHost, port: target() ?? 0 });
      socket.pipe(upstream).pipe(socket);
      const drop = () => {
        socket.destroy();
        upstream.destroy();
      };
      socket.once("error", drop).once("close", drop);
      upstream.once("error", drop).once("close", drop);
    });
    front.once("error", reject);
    front.listen(port, host, () => {
      front.off("error", reject);
      resolve(front);
    });
  });
}
