/**
 * `stan server`: runs the embedded NATS Streaming server (`@stan-ts/server`) until Ctrl-C, with
 * the flags of `stan-server`.
 */

import { parseServerArgs, SERVER_HELP, startServer } from "@stan-ts/server";
import { aborted, CliError, type CliIO, UsageError, write } from "./io.js";
import { VERSION } from "./version.js";

/** The `stan server --help` text. */
export const SERVER_COMMAND_HELP = `${SERVER_HELP.replace(
  "Usage: stan-server [options]",
  `Usage: stan server [options]

Runs the embedded NATS Streaming server: a nats-server child on 127.0.0.1 (or the NATS
server given with -ns) plus the streaming engine, until Ctrl-C, which stops it and exits 0.
Accepts the flags of stan-server (and of nats-streaming-server); -c/--cluster is an alias
of --cluster_id.`,
)}
Examples:
  stan server                         # memory store, cluster ID test-cluster, a free port
  stan server -p 4222 -c my-cluster
  stan server -store file -dir ./data
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
  if (io.signal?.aborted) return 130;
  let running: Awaited<ReturnType<typeof startServer>>;
  try {
    running = await startServer(parsed);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new CliError(
      message,
      /nats-server/.test(message)
        ? "install nats-server (apt-get install nats-server) or set NATS_SERVER_BIN, or attach to a running NATS server with -ns <url>"
        : undefined,
      { cause: err },
    );
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
