/**
 * `stan server`: runs the embedded NATS Streaming server (`@stan-ts/server`) until Ctrl-C, with
 * the flags of `stan-server`.
 */

import {
  parseServerArgs,
  portInUse,
  SERVER_HELP,
  type ServerOptions,
  startServer,
} from "@stan-ts/server";
import { aborted, CliError, type CliIO, UsageError, write } from "./io.js";
import { VERSION } from "./version.js";

/** The `stan server --help` text. */
export const SERVER_COMMAND_HELP = `${SERVER_HELP.replace(
  "Usage: stan-server [options]",
  `Usage: stan server [options]

Runs the embedded NATS Streaming server: a nats-server child on 127.0.0.1 port 4222, as
nats-streaming-server does (or the NATS server given with -ns), plus the streaming engine,
until Ctrl-C, which stops it and exits 0. Accepts the flags of stan-server (and of
nats-streaming-server); -c/--cluster is an alias of --cluster_id, and -p 0 picks a free
port. An address other than loopback (-a 0.0.0.0) serves other hosts and containers: stan
warns, since the server then accepts anyone who can reach it unless --user/--pass or --auth
are given.`,
).replace(/(Port for the started nats-server \(default: )free port;/, "$14222, -p 0: a free port;")}
Examples:
  stan server                         # memory store, cluster ID test-cluster, port 4222
  stan server -p 0 -c my-cluster      # a free port (printed once ready)
  stan server -store file -dir ./data
  stan server -a 0.0.0.0              # reachable from other hosts (with a warning)
`;

/** Maps the `stan` conventions onto `stan-server` flags (`-c/--cluster` → `--cluster_id`). */
function serverArgs(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === "-c" || a === "--cluster") {
      out.push("--cluster_id");
    } else if (a.startsWith("--cluster=")) {
      out.push(`--cluster_id=${a.slice("--cluster=".length)}`);
    } else {
      out.push(a);
    }
  }
  return out;
}

/** The port `stan server` starts nats-server on when -p is not given, as nats-streaming-server. */
export const DEFAULT_SERVER_PORT = 4222;

/** True for an address only this host can reach. */
function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** The value of the last `-a/--addr/--net` among nats-server pass-through arguments. */
function listenAddress(natsArgs: readonly string[] | undefined): string | undefined {
  let addr: string | undefined;
  const args = natsArgs ?? [];
  for (let i = 0; i < args.length; i++) {
    const m = /^--?(a|addr|net)(=(.*))?$/.exec(args[i] as string);
    if (!m) continue;
    addr = m[2] !== undefined ? m[3] : args[++i];
  }
  return addr;
}

/** Checks what the server's own parser lets through but cannot work; returns the options. */
function checkOptions(parsed: ServerOptions): ServerOptions {
  // the cluster ID is checked by parseServerArgs (clusterIdProblem of @stan-ts/core)
  if (String(parsed.store ?? "").toUpperCase() === "FILE" && !parsed.dir) {
    throw new UsageError(
      "-store file needs -dir <directory> (where the file store keeps its data)",
    );
  }
  if (parsed.natsUrl !== undefined) return parsed;
  const port = parsed.natsPort ?? DEFAULT_SERVER_PORT;
  return { ...parsed, natsPort: port === 0 ? -1 : port };
}

/** Explains a failed start: a port in use, a missing nats-server binary, or the error as is. */
function explainStartError(err: unknown): CliError {
  const message = err instanceof Error ? err.message : String(err);
  const inUse = portInUse(message);
  if (inUse) {
    return new CliError(
      `${inUse} is already in use (another NATS or streaming server?)`,
      `stop what listens there, choose another port with -p <port> (-p 0: a free one), or attach to that NATS server with -ns nats://${inUse}`,
      { cause: err },
    );
  }
  if (/nats-server not found|cannot start nats-server/.test(message)) {
    return new CliError(
      message,
      "install nats-server (apt-get install nats-server, as root) or set NATS_SERVER_BIN, or attach to a running NATS server with -ns <url>",
      { cause: err },
    );
  }
  return new CliError(message, undefined, { cause: err });
}

/** Runs `stan server`; resolves with the exit code once stopped. */
export async function server(args: string[], io: CliIO): Promise<number> {
  let parsed: ReturnType<typeof parseServerArgs>;
  try {
    parsed = parseServerArgs(serverArgs(args));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (parsed === "help") {
    await write(io.stdout, SERVER_COMMAND_HELP);
    return 0;
  }
  if (parsed === "version") {
    await write(io.stdout, `stan ${VERSION} (nats-streaming-server 0.25 protocol)\n`);
    return 0;
  }
  const options = checkOptions(parsed);
  const addr = listenAddress(options.natsArgs);
  if (addr !== undefined && !isLoopback(addr)) {
    await write(
      io.stderr,
      `stan server: warning: listening on ${addr}, not loopback: other hosts can reach this server; ` +
        "without --user/--pass or --auth it accepts anyone\n",
    );
  }
  if (io.signal?.aborted) return 130;
  let running: Awaited<ReturnType<typeof startServer>>;
  try {
    running = await startServer(options);
  } catch (err) {
    throw explainStartError(err);
  }
  try {
    await write(
      io.stderr,
      `stan: streaming server ready on ${running.url} (cluster ID "${running.clusterId}"); Ctrl-C to stop\n`,
    );
    await aborted(io.signal);
  } finally {
    await running.close();
  }
  return 0;
}
