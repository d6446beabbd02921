/**
 * `@stan-ts/cli`: the `stan` command line (pub, sub, bench, server), importable so that it can
 * run in-process.
 *
 * @example
 * ```ts
 * import { run } from "@stan-ts/cli";
 *
 * const code = await run(["sub", "orders", "--all", "--count", "1"], {
 *   stdout: process.stdout,
 *   stderr: process.stderr,
 * });
 * ```
 *
 * @packageDocumentation
 */

export { BENCH_HELP, type BenchSample, bench, benchSummary } from "./bench.js";
export {
  CONNECTION_HELP,
  type ConnectionSettings,
  connectionSettings,
  DEFAULT_CLUSTER,
  DEFAULT_SERVER,
} from "./common.js";
export { CliError, type CliIO, lines, type OutputStream, UsageError } from "./io.js";
export { MIGRATE_HELP, migrate } from "./migrate.js";
export { MessageDigest, streamNameFor } from "./migrate-stream.js";
export { PUB_HELP, pub } from "./pub.js";
export { ExitCode, HELP, run } from "./run.js";
export { SERVER_COMMAND_HELP, server } from "./server.js";
export { formatJson, formatText, SUB_HELP, sub } from "./sub.js";
export { VERSION } from "./version.js";
