#!/usr/bin/env node
/**
 * `stan-server`: runs the embedded NATS Streaming server from the command line, with flags
 * mirroring nats-streaming-server's.
 *
 * @packageDocumentation
 */

import { createRequire } from "node:module";
import { HELP, parseArgs } from "./cli.js";
import { startServer } from "./server.js";

async function main(): Promise<void> {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`stan-server: ${(err as Error).message}\n`);
    process.exit(2);
  }
  if (parsed === "help") {
    process.stdout.write(HELP);
    return;
  }
  if (parsed === "version") {
    const require = createRequire(import.meta.url);
    const pkg = require("../package.json") as { version: string };
    process.stdout.write(
      `stan-server version ${pkg.version} (nats-streaming-server 0.25.6 protocol)\n`,
    );
    return;
  }
  // Handlers first, so a signal that arrives during start-up (or just as the "listening" line
  // is read) is handled too: the server stops once started.
  let signalled: NodeJS.Signals | undefined;
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  const stop = (signal: NodeJS.Signals) => {
    if (signalled) return;
    signalled = signal;
    if (server) shutdown(server, signal);
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  server = await startServer(parsed);
  process.stderr.write(
    `${JSON.stringify({ time: new Date().toISOString(), level: "info", msg: "listening", url: server.url, clusterId: server.clusterId })}\n`,
  );
  if (signalled) shutdown(server, signalled);
}

/** Closes the server and exits as nats-streaming-server 0.25.6: 143 after SIGTERM, 0 after SIGINT. */
function shutdown(server: { close(): Promise<void> }, signal: NodeJS.Signals): void {
  server.close().then(
    () => process.exit(signal === "SIGTERM" ? 143 : 0),
    (err: unknown) => {
      process.stderr.write(`stan-server: ${String(err)} (on ${signal})\n`);
      process.exit(1);
    },
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`stan-server: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
