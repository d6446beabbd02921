#!/usr/bin/env node
/**
 * The `stan` executable: runs {@link run} on the process's arguments and streams. The first
 * Ctrl-C (SIGINT) or SIGTERM stops the command cleanly; a second one exits at once (130).
 *
 * @packageDocumentation
 */

import { run } from "./run.js";

const controller = new AbortController();
let signals = 0;
const onSignal = (): void => {
  if (++signals > 1) process.exit(130);
  controller.abort();
};
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);

// The reader of stdout went away (`stan sub orders | head -3`): stop as if interrupted, and
// exit quietly with 0 as other Unix tools do, instead of crashing on an unhandled EPIPE.
let stdoutGone = false;
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code !== "EPIPE") throw err;
  if (stdoutGone) return;
  stdoutGone = true;
  controller.abort();
  setTimeout(() => process.exit(0), 2000).unref();
});

run(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  get stdin() {
    return process.stdin;
  },
  env: process.env,
  signal: controller.signal,
}).then(
  (code) => {
    if (stdoutGone) code = 0;
    process.exitCode = code;
    // Whatever might still hold the event loop (it should be nothing) does not keep us alive.
    setTimeout(() => process.exit(code), 2000).unref();
  },
  (err: unknown) => {
    if (stdoutGone) process.exit(0);
    process.stderr.write(`stan: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
