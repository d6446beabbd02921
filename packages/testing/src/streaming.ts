import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type LogLevel,
  type ServerOptions,
  type StreamingServer,
  startServer,
} from "@stan-ts/server";
import { crashServer } from "@stan-ts/server/internal";
import { HarnessError, type NatsServer, startNatsServer } from "./nats-server.js";

/** How the streaming server of a test run is provided. */
export type StreamingMode = "embedded" | "binary" | "external";

/**
 * The mode chosen by the environment: `external` when STAN_URL is set, `binary` when
 * NATS_STREAMING_SERVER points at a nats-streaming-server binary, else `embedded`.
 */
export function streamingMode(): StreamingMode {
  if (process.env.STAN_URL) return "external";
  if (process.env.NATS_STREAMING_SERVER) return "binary";
  return "embedded";
}

/**
 * Why the harness cannot restart, stop, kill or reconfigure the streaming server in the current
 * mode, or undefined when it can. Only external mode (STAN_URL) has such a reason: that server
 * is someone else's process, started with its own options.
 */
export function serverControlUnavailable(): string | undefined {
  return streamingMode() === "external"
    ? "STAN_URL: the harness cannot restart, stop, kill or reconfigure an external server"
    : undefined;
}

/**
 * Skips a test, with {@link serverControlUnavailable}'s reason, in the mode where the harness
 * cannot restart, stop, kill or reconfigure the server. Takes vitest's test context, so a test
 * file or suite of such tests can say `beforeEach(skipWithoutServerControl)`, and one test
 * `skipWithoutServerControl(ctx)` as its first line.
 */
export function skipWithoutServerControl(ctx: {
  skip(condition: boolean, note?: string): void;
}): void {
  const reason = serverControlUnavailable();
  ctx.skip(reason !== undefined, reason);
}

/**
 * Options of {@link streamingServer}: the embedded server's options of the same names
 * (durations in milliseconds), which the binary mode maps to its flags. Ignored in external
 * mode.
 */
export type StreamingServerOptions = Pick<
  ServerOptions,
  | "clusterId"
  | "dir"
  | "hbInterval"
  | "hbTimeout"
  | "hbFailCount"
  | "maxChannels"
  | "maxSubsPerChannel"
  | "maxMsgs"
  | "maxBytes"
  | "maxAge"
  | "maxInactivity"
  | "channels"
  | "replaceDurable"
> & {
  /** @default "memory" */
  store?: "memory" | "file";
  /** Embedded server's log level. @default "silent" (STAN_LOG_LEVEL overrides) */
  logLevel?: LogLevel;
  /** The mode to use instead of the environment's ({@link streamingMode}). */
  mode?: StreamingMode;
};

/** A streaming server for a test, disposable with `await using`. */
export interface StreamingServerHandle extends AsyncDisposable {
  /** NATS URL clients connect to. */
  readonly url: string;
  readonly clusterId: string;
  /** The nats-server the harness started, undefined in external mode. */
  readonly nats: NatsServer | undefined;
  readonly mode: StreamingMode;
  /** False in external mode, where restart/kill throw. */
  readonly canRestart: boolean;
  /** The file store directory, when the store is a file store. */
  readonly dir: string | undefined;
  /** Restarts the streaming server on the same nats-server (same store directory). */
  restart(): Promise<void>;
  /** Restarts the nats-server on the same port; the streaming server reconnects. */
  restartNats(): Promise<void>;
  /** Stops the streaming server abruptly (binary: SIGKILL; embedded: no flush of buffered writes). */
  kill(): Promise<void>;
  /** Stops the streaming server gracefully; {@link StreamingServerHandle.restart} starts it again. */
  stop(): Promise<void>;
}

function ms(v: number): string {
  return `${Math.round(v)}ms`;
}

/**
 * The `store_limits.channels` block of a nats-streaming-server config file for `channels`. In
 * that file an explicit 0 means unlimited, so fields that are 0 (inherit, in our options) are
 * left out, which is how the file says "inherit".
 */
function channelsConfig(channels: NonNullable<StreamingServerOptions["channels"]>): string {
  const entries = Object.entries(channels).map(([key, l]) => {
    const f: string[] = [];
    const num = (name: string, v: number | undefined) => {
      if (v) f.push(`${name}: ${Math.round(v)}`);
    };
    const dur = (name: string, v: number | undefined) => {
      if (v) f.push(`${name}: "${v < 0 ? "-1ns" : ms(v)}"`);
    };
    num("max_msgs", l.maxMsgs);
    num("max_bytes", l.maxBytes);
    dur("max_age", l.maxAge);
    num("max_subs", l.maxSubsPerChannel);
    dur("max_inactivity", l.maxInactivity);
    return `      ${JSON.stringify(key)}: { ${f.join(", ")} }`;
  });
  return `streaming {\n  store_limits {\n    channels: {\n${entries.join("\n")}\n    }\n  }\n}\n`;
}

/** Flags for nats-streaming-server equivalent to the options (`configFile` for `channels`). */
function binaryArgs(
  o: StreamingServerOptions,
  clusterId: string,
  natsUrl: string,
  configFile: string | undefined,
): string[] {
  const a = ["-cid", clusterId, "-ns", natsUrl, "-store", o.store ?? "memory"];
  if (configFile) a.push("-sc", configFile);
  if (o.dir) a.push("-dir", o.dir);
  if (o.hbInterval !== undefined) a.push("-hbi", ms(o.hbInterval));
  if (o.hbTimeout !== undefined) a.push("-hbt", ms(o.hbTimeout));
  if (o.hbFailCount !== undefined) a.push("-hbf", String(o.hbFailCount));
  if (o.maxChannels !== undefined) a.push("-mc", String(o.maxChannels));
  if (o.maxSubsPerChannel !== undefined) a.push("-msu", String(o.maxSubsPerChannel));
  if (o.maxMsgs !== undefined) a.push("-mm", String(o.maxMsgs));
  if (o.maxBytes !== undefined) a.push("-mb", String(o.maxBytes));
  if (o.maxAge !== undefined) a.push("-ma", ms(o.maxAge));
  if (o.maxInactivity !== undefined) a.push("-mi", ms(o.maxInactivity));
  if (o.replaceDurable) a.push("--replace_durable=true");
  return a;
}

/**
 * Spawns nats-streaming-server and resolves once its log says it is ready. A watchdog shell
 * SIGKILLs it if this process dies; the watchdog is disarmed as soon as the server exits, so it
 * can never kill a recycled PID. A server that does not become ready is killed, not left behind.
 */
async function startBinary(bin: string, args: string[]): Promise<ChildProcess> {
  const child = spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"] });
  let watchdog: ChildProcess | undefined;
  if (child.pid !== undefined) {
    watchdog = spawn("sh", ["-c", `read _ ; kill -9 ${child.pid} 2>/dev/null`], {
      stdio: ["pipe", "ignore", "ignore"],
    });
    watchdog.unref();
  }
  child.once("exit", () => {
    watchdog?.kill("SIGKILL");
    watchdog = undefined;
  });
  let log = "";
  let timer: NodeJS.Timeout | undefined;
  let onExit: ((code: number | null, signal: NodeJS.Signals | null) => void) | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => reject(new HarnessError(`not ready after 15s:\n${log}`)), 15_000);
      onExit = (code, signal) =>
        reject(new HarnessError(`nats-streaming-server exited (${code ?? signal}):\n${log}`));
      child.once("exit", onExit);
      child.once("error", (e) => reject(new HarnessError(`${bin}: ${e.message}`)));
      child.stderr?.setEncoding("utf8");
      child.stderr?.on("data", (c: string) => {
        log += c;
        if (log.includes("Streaming Server is ready")) resolve();
      });
    });
  } catch (err) {
    await stopChild(child, "SIGKILL");
    throw err;
  } finally {
    clearTimeout(timer);
    if (onExit) child.off("exit", onExit);
    child.stderr?.removeAllListeners("data");
  }
  child.stderr?.resume();
  return child;
}

async function stopChild(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!child || child.pid === undefined) return;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill(signal);
  await done;
}

/**
 * Starts a streaming server for a test: by default a nats-server plus the embedded
 * `@stan-ts/server`; the real binary when NATS_STREAMING_SERVER is set; an already running
 * server when STAN_URL (+ STAN_CLUSTER_ID) is set.
 *
 * @example
 * ```ts
 * await using stan = await streamingServer({ hbInterval: 200 });
 * ```
 */
export async function streamingServer(
  given: StreamingServerOptions = {},
): Promise<StreamingServerHandle> {
  const { mode = streamingMode(), ...options } = given;
  if (mode === "external") {
    const unsupported = async (): Promise<void> => {
      throw new HarnessError(`restart/kill are not supported: ${serverControlUnavailable()}`);
    };
    return {
      url: process.env.STAN_URL ?? "",
      clusterId: process.env.STAN_CLUSTER_ID ?? options.clusterId ?? "test-cluster",
      nats: undefined,
      mode,
      canRestart: false,
      dir: undefined,
      restart: unsupported,
      restartNats: unsupported,
      kill: unsupported,
      stop: unsupported,
      [Symbol.asyncDispose]: async () => {},
    };
  }
  const clusterId = options.clusterId ?? "test-cluster";
  let tempDir: string | undefined;
  const opts = { ...options };
  if (opts.store === "file" && !opts.dir) {
    tempDir = mkdtempSync(join(tmpdir(), "stan-ts-store-"));
    opts.dir = tempDir;
  }
  let configDir: string | undefined;
  let configFile: string | undefined;
  if (mode === "binary" && opts.channels && Object.keys(opts.channels).length > 0) {
    configDir = mkdtempSync(join(tmpdir(), "stan-ts-conf-"));
    configFile = join(configDir, "stan.conf");
    writeFileSync(configFile, channelsConfig(opts.channels));
  }
  const removeTemp = (): void => {
    if (tempDir) rmSync(tempDir, { recursive: true, force: true });
    if (configDir) rmSync(configDir, { recursive: true, force: true });
  };
  let nats: NatsServer;
  try {
    nats = await startNatsServer();
  } catch (err) {
    removeTemp();
    throw err;
  }
  let embedded: StreamingServer | undefined;
  let child: ChildProcess | undefined;
  const launch = async (): Promise<void> => {
    if (mode === "binary") {
      child = await startBinary(
        process.env.NATS_STREAMING_SERVER ?? "",
        binaryArgs(opts, clusterId, nats.url, configFile),
      );
      return;
    }
    const { logLevel, ...rest } = opts;
    embedded = await startServer({
      ...rest,
      clusterId,
      natsUrl: nats.url,
      logLevel: (process.env.STAN_LOG_LEVEL as typeof logLevel) ?? logLevel ?? "silent",
    });
  };
  const stop = async (): Promise<void> => {
    await embedded?.close();
    embedded = undefined;
    await stopChild(child, "SIGTERM");
    child = undefined;
  };
  try {
    await launch();
  } catch (err) {
    await nats[Symbol.asyncDispose]();
    removeTemp();
    throw err;
  }
  return {
    url: nats.url,
    clusterId,
    nats,
    mode,
    canRestart: true,
    dir: opts.dir,
    restart: async () => {
      await stop();
      await launch();
    },
    restartNats: () => nats.restart(),
    kill: async () => {
      if (embedded) await crashServer(embedded);
      embedded = undefined;
      await stopChild(child, "SIGKILL");
      child = undefined;
    },
    stop,
    [Symbol.asyncDispose]: async () => {
      await stop();
      await nats[Symbol.asyncDispose]();
      removeTemp();
    },
  };
}
