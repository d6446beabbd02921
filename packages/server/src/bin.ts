#!/usr/bin/env node
/**
 * `stan-server`: runs the embedded NATS Streaming server from the command line, with flags
 * mirroring nats-streaming-server's.
 *
 * Start-up (see packages/server/README.md "Start-up and shutdown"): this file
 * is a small bundle (argument parsing, the nats-server launcher). With a free port (no `-p`)
 * it spawns nats-server before it loads anything else, so nats-server's ~20 ms start overlaps
 * the loading of the engine; nobody can connect before the "listening" line names the port.
 * The engine and its dependencies (nats.js, protobuf) are one CommonJS bundle,
 * dist/bin-server.cjs, compiled through V8's code cache (see code-cache.ts): Node 20 has no
 * `module.enableCompileCache`.
 *
 * @packageDocumentation
 */

import { appendFileSync, readFileSync } from "node:fs";
import { HELP, parseArgs, portInUse } from "./cli.js";
import { loadBundle } from "./code-cache.js";
import { type NatsChild, spawnNatsServer } from "./nats-process.js";
import type * as ServerModule from "./server.js";

/** The `-l <file>` to log to, if any. */
let logFile: string | undefined;

/** One JSON log line on stderr (or the `-l` file), as the default logger writes them. */
function log(msg: string, fields: Record<string, unknown> = {}): void {
  const line = `${JSON.stringify({ time: new Date().toISOString(), level: "info", msg, ...fields })}\n`;
  if (logFile === undefined) process.stderr.write(line);
  else appendFileSync(logFile, line);
}

/**
 * The engine: the code-cached bundle next to this file when built, else the sources (tsx);
 * and the function that writes its code cache, to call once start-up is over.
 */
async function loadServer(): Promise<{
  server: typeof ServerModule;
  codeCache: "used" | "compiled" | "sources";
  saveCache(): void;
}> {
  const bundle = new URL("./bin-server.cjs", import.meta.url);
  const loaded = loadBundle<typeof ServerModule>(bundle);
  if (loaded) {
    const codeCache = loaded.cacheUsed ? "used" : "compiled";
    return { server: loaded.exports, codeCache, saveCache: loaded.saveCache };
  }
  const source = "./server.js"; // a variable, so the bin bundle does not include it
  const server = (await import(source)) as typeof ServerModule;
  return { server, codeCache: "sources", saveCache: () => {} };
}

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
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
      version: string;
    };
    process.stdout.write(
      `stan-server version ${pkg.version} (nats-streaming-server 0.25.6 protocol)\n`,
    );
    return;
  }
  const options = parsed;
  logFile = options.logFile;
  // Handlers first, so a signal that arrives during start-up (or just as the "listening" line
  // is read) is handled too: the server stops once started.
  let signalled: NodeJS.Signals | undefined;
  let server: ServerModule.StreamingServer | undefined;
  let early: Promise<NatsChild> | undefined;
  const stop = (signal: NodeJS.Signals) => {
    if (signalled) return;
    signalled = signal;
    if (server) shutdown(server, signal, early);
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  // A free port is unknown to anyone until the "listening" line: nats-server may start while
  // the engine loads. A fixed port (-p) would accept connections the engine cannot answer
  // yet, so then nats-server starts once the engine is loaded (startServer does it).
  if (options.natsUrl === undefined && options.natsPort === undefined) {
    early = spawnNatsServer({
      ...(options.natsServerBin !== undefined ? { bin: options.natsServerBin } : {}),
      ...(options.natsArgs !== undefined ? { args: options.natsArgs } : {}),
      holdMonitor: true,
    });
    early.catch(() => {}); // reported by startServer below
  }
  const {
    server: { startServer, startServerOnOwnNats },
    codeCache,
    saveCache,
  } = await loadServer();
  try {
    server = await (early
      ? startServerOnOwnNats({ ...options, natsServer: early })
      : startServer(options));
  } catch (err) {
    await early?.then((c) => c.stop()).catch(() => {});
    throw err;
  }
  log("listening", { url: server.url, clusterId: server.clusterId, codeCache });
  if (signalled) shutdown(server, signalled, early);
  // once, after the first start (or a Node upgrade): a few ms, after the "listening" line
  else setImmediate(saveCache);
}

/**
 * Stops the server and exits as nats-streaming-server 0.25.6: 143 after SIGTERM, 0 after
 * SIGINT. The engine takes no request from the moment close() is called (the "stopping" line
 * marks it), then flushes and closes the store, then nats-server stops.
 */
function shutdown(
  server: ServerModule.StreamingServer,
  signal: NodeJS.Signals,
  early: Promise<NatsChild> | undefined,
): void {
  const closed = server.close();
  log("stopping", { signal });
  closed
    .then(() => early?.then((c) => c.stop()))
    .then(
      () => process.exit(signal === "SIGTERM" ? 143 : 0),
      (err: unknown) => {
        process.stderr.write(`stan-server: ${String(err)} (on ${signal})\n`);
        process.exit(1);
      },
    );
}

main().catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  const inUse = portInUse(message);
  process.stderr.write(
    inUse
      ? `stan-server: ${inUse} is already in use (another NATS or streaming server?): ` +
          "stop what listens there, choose another port with -p <port> (or leave -p out for a " +
          `free one), or attach to that NATS server with -ns nats://${inUse}\n`
      : `stan-server: ${message}\n`,
  );
  process.exit(1);
});
