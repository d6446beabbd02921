/**
 * `@stan-ts/server`: an embedded NATS Streaming server, wire-compatible with
 * nats-streaming-server 0.25, running over a real `nats-server`.
 *
 * @example
 * ```ts
 * import { startServer } from "@stan-ts/server";
 *
 * await using server = await startServer({ store: "file", dir: "./data" });
 * console.log(server.url, server.clusterId);
 * ```
 *
 * @packageDocumentation
 */

export {
  HELP as SERVER_HELP,
  parseArgs as parseServerArgs,
  parseDuration,
  parseSize,
  portInUse,
} from "./cli.js";
export { Errors } from "./engine.js";
export type { ChannelLimitOverrides, ChannelLimitValues } from "./limits.js";
export type { LogFields, Logger, LogLevel } from "./logger.js";
export { createLogger } from "./logger.js";
export type { NatsChild, NatsChildOptions } from "./nats-process.js";
export { findNatsServer, spawnNatsServer as startNatsServer } from "./nats-process.js";
export type { ServerOptions, StreamingServer } from "./server.js";
export { ServerOptionsError, startServer } from "./server.js";
