import { appendFileSync } from "node:fs";
import type { ConnectionOptions } from "nats";
import { Engine } from "./engine.js";
import { type ChannelLimitOverrides, limitsResolver } from "./limits.js";
import { createLogger, type Logger, type LogLevel } from "./logger.js";
import { type NatsChild, spawnNatsServer } from "./nats-process.js";
import { FileStore } from "./store/file.js";
import { MemoryStore } from "./store/memory.js";
import type { Store } from "./store/types.js";

/**
 * Options of {@link startServer}, named after nats-streaming-server's flags. Durations are
 * milliseconds. Every field is optional; defaults are those of nats-streaming-server 0.25.
 */
export interface ServerOptions {
  /** NATS server to attach to; when omitted a `nats-server` child is started on 127.0.0.1. */
  natsUrl?: string;
  /**
   * A nats-server to run on: a handle from `startNatsServer()` (or the promise of one), which
   * the streaming server neither starts nor stops. Many streaming servers (distinct cluster
   * IDs, or one after the other) can share one, which saves a nats-server start per
   * streaming server: a test suite starts one per worker and a streaming server per test
   * file (see bench/README.md "Start-up"). Its held-back monitoring port, if any, opens when
   * the first streaming server on it is ready. Takes precedence over `natsUrl`.
   */
  natsServer?: NatsChild | Promise<NatsChild>;
  /** Path of the nats-server binary used when `natsUrl` is omitted. @default NATS_SERVER_BIN or `nats-server` */
  natsServerBin?: string;
  /**
   * Port for the nats-server child (`-p`). Ignored with `natsUrl`, as nats-streaming-server
   * ignores `-p` with `-ns`. @default a free port
   */
  natsPort?: number;
  /**
   * More nats-server command-line arguments for the child started when `natsUrl` is omitted
   * (for example `["--cluster", "nats://127.0.0.1:6222", "--routes", "nats://127.0.0.1:6223"]`
   * or `["-m", "8222"]`); `stan-server` fills it with the nats-server flags it is given.
   * Ignored with `natsUrl`.
   */
  natsArgs?: readonly string[];
  /**
   * Further options of the server's NATS connections (see the `nats` package): credentials
   * (`token`, `user`/`pass`, `authenticator` for nkeys or a creds file) and `tls`.
   */
  natsOptions?: Partial<ConnectionOptions>;
  /** Cluster ID (`-cid`). @default "test-cluster" */
  clusterId?: string;
  /** Store type (`-store`), case-insensitive. @default "memory" */
  store?: "memory" | "file" | "MEMORY" | "FILE";
  /** Directory of the file store (`-dir`); required with `store: "file"`. */
  dir?: string;
  /** fsync the file store on each flush (`--file_sync`). @default true */
  fileSync?: boolean;
  /** Interval between heartbeats to each client, ms (`-hbi`). @default 30000 */
  hbInterval?: number;
  /** How long to wait for a heartbeat reply, ms (`-hbt`). @default 10000 */
  hbTimeout?: number;
  /** Failed heartbeats tolerated before a client is closed (`-hbf`). @default 10 */
  hbFailCount?: number;
  /** Maximum number of channels, 0 = unlimited (`-mc`). @default 100 */
  maxChannels?: number;
  /** Maximum subscriptions per channel, 0 = unlimited (`-msu`). @default 1000 */
  maxSubsPerChannel?: number;
  /** Maximum messages per channel, 0 = unlimited (`-mm`). @default 1000000 */
  maxMsgs?: number;
  /** Maximum bytes per channel, 0 = unlimited (`-mb`). @default 1024000000 */
  maxBytes?: number;
  /** Maximum message age, ms, 0 = unlimited (`-ma`). @default 0 */
  maxAge?: number;
  /** Delete a channel after this long (ms) without subscription or new message, 0 = never (`-mi`). @default 0 */
  maxInactivity?: number;
  /**
   * Per-channel limits; keys may use `*` and `>`. A field left out or 0 inherits from the
   * closest wider entry, else from the global value; a negative value means unlimited. The most
   * specific key wins. These are the semantics of the Go server's `StoreLimits.PerChannel`;
   * its configuration file (`store_limits.channels`) differs in one point: there an explicit 0
   * means unlimited, so translate such a file's 0 to -1 here.
   *
   * @example
   * ```ts
   * { "orders.>": { maxMsgs: 100 }, "orders.audit": { maxAge: -1 } }
   * ```
   */
  channels?: Record<string, ChannelLimitOverrides>;
  /** Discover subject prefix (`--discover_prefix`). @default "_STAN.discover" */
  discoverPrefix?: string;
  /** Replace an online durable by a new subscription request for it (`--replace_durable`). @default false */
  replaceDurable?: boolean;
  /**
   * Append the default logger's JSON lines to this file instead of stderr (`-l`/`--log` of
   * the official binary). Ignored with `logger`.
   */
  logFile?: string;
  /** Structured logger; defaults to JSON lines on stderr (or `logFile`) at `logLevel`. */
  logger?: Logger;
  /** Level of the default logger. @default "warn" */
  logLevel?: LogLevel;
}

/** A running streaming server; `await using` closes it. */
export interface StreamingServer extends AsyncDisposable {
  /** The NATS URL clients connect to. */
  readonly url: string;
  /** Same as {@link StreamingServer.url}: the NATS server the streaming server runs on. */
  readonly natsUrl: string;
  /** The cluster ID clients must use. */
  readonly clusterId: string;
  /** Undecodable protocol messages received so far (each is logged at warn, then refused or dropped). */
  readonly protocolErrors: number;
  /** Stops serving, flushes and closes the store, and stops the nats-server child if it started one. Idempotent. */
  close(): Promise<void>;
}

/** Raised for invalid options. */
export class ServerOptionsError extends Error {
  override name = "ServerOptionsError";
}

function nonNegative(name: string, v: number | undefined, dflt: number): number {
  const value = v ?? dflt;
  if (!Number.isFinite(value) || value < 0) {
    throw new ServerOptionsError(`${name} must be a non-negative number, got ${String(v)}`);
  }
  return value;
}

/**
 * Starts an embedded NATS Streaming server.
 *
 * @example
 * ```ts
 * await using server = await startServer({ clusterId: "test-cluster" });
 * // connect any STAN client to server.url with cluster ID server.clusterId
 * ```
 */
export function startServer(options: ServerOptions = {}): Promise<StreamingServer> {
  return start(options, false);
}

/**
 * For the `stan-server` bin: {@link startServer} on `natsServer`, a nats-server the bin
 * started for this streaming server alone (on a port nobody knew yet), so no other
 * streaming server can be on it and the start skips asking for one.
 *
 * @internal
 */
export function startServerOnOwnNats(
  options: ServerOptions & { natsServer: Promise<NatsChild> },
): Promise<StreamingServer> {
  return start(options, true);
}

async function start(options: ServerOptions, ownNats: boolean): Promise<StreamingServer> {
  const logger =
    options.logger ??
    createLogger(
      options.logLevel ?? "warn",
      options.logFile === undefined ? undefined : (line) => appendFileSync(options.logFile!, line),
    );
  const clusterId = options.clusterId ?? "test-cluster";
  const limitsFor = limitsResolver(
    {
      maxMsgs: nonNegative("maxMsgs", options.maxMsgs, 1_000_000),
      maxBytes: nonNegative("maxBytes", options.maxBytes, 1_024_000_000),
      maxAge: nonNegative("maxAge", options.maxAge, 0),
      maxSubsPerChannel: nonNegative("maxSubsPerChannel", options.maxSubsPerChannel, 1000),
      maxInactivity: nonNegative("maxInactivity", options.maxInactivity, 0),
    },
    options.channels,
  );
  const storeType = (options.store ?? "memory").toUpperCase();
  let store: Store;
  if (storeType === "MEMORY") {
    store = new MemoryStore(limitsFor);
  } else if (storeType === "FILE") {
    if (!options.dir) throw new ServerOptionsError("the file store needs a directory (dir)");
    store = new FileStore(options.dir, limitsFor, { sync: options.fileSync ?? true });
  } else {
    throw new ServerOptionsError(`unsupported store type "${options.store}"`);
  }
  const engine = new Engine(
    {
      clusterId,
      discoverPrefix: options.discoverPrefix ?? "_STAN.discover",
      hbInterval: nonNegative("hbInterval", options.hbInterval, 30_000),
      hbTimeout: nonNegative("hbTimeout", options.hbTimeout, 10_000),
      hbFailCount: nonNegative("hbFailCount", options.hbFailCount, 10),
      maxChannels: nonNegative("maxChannels", options.maxChannels, 100),
      limitsFor,
      replaceDurable: options.replaceDurable ?? false,
      natsOptions: options.natsOptions ?? {},
      logger,
    },
    store,
  );
  // `child` is stopped on close; `shared` is the caller's
  let child: NatsChild | undefined;
  let shared: NatsChild | undefined;
  let natsUrl = options.natsUrl;
  if (options.natsServer) {
    shared = await options.natsServer;
    natsUrl = shared.url;
  } else if (!natsUrl) {
    child = await spawnNatsServer({
      ...(options.natsServerBin !== undefined ? { bin: options.natsServerBin } : {}),
      ...(options.natsPort !== undefined ? { port: options.natsPort } : {}),
      ...(options.natsArgs !== undefined ? { args: options.natsArgs } : {}),
      holdMonitor: true,
    });
    natsUrl = child.url;
  }
  try {
    // a nats-server started for this server alone has no other streaming server on it
    await engine.start(natsUrl, { selfCheck: !(ownNats || child) });
    // No sign of life before the engine answers: the monitoring port opens only now.
    await (child ?? shared)?.openMonitor();
  } catch (err) {
    await engine.shutdown().catch(() => {});
    await child?.stop();
    throw err;
  }
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    // engine.shutdown() takes no request from its first (synchronous) step on
    closed ??= (async () => {
      await engine.shutdown();
      await child?.stop();
      logger.info("streaming server stopped", { clusterId });
    })();
    return closed;
  };
  const url = natsUrl;
  const handle: StreamingServer & { [crashKey]: () => Promise<void> } = {
    url,
    natsUrl: url,
    clusterId,
    get protocolErrors() {
      return engine.protocolErrors;
    },
    close,
    [Symbol.asyncDispose]: close,
    [crashKey]: () => {
      closed ??= (async () => {
        await engine.crash();
        await child?.stop();
      })();
      return closed;
    },
  };
  return handle;
}

const crashKey = Symbol("stan-ts.crash");

/**
 * Stops a server the way kill -9 would, for crash tests: no flush of buffered store writes,
 * NATS connections dropped at once. Afterwards the handle is closed.
 */
export async function crashServer(server: StreamingServer): Promise<void> {
  const crash = (server as Partial<Record<typeof crashKey, () => Promise<void>>>)[crashKey];
  if (!crash) throw new Error("not a server started by startServer()");
  await crash();
}
