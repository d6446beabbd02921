/**
 * The stan-ts test harness: real servers on free loopback ports, disposable with `await using`.
 *
 * @packageDocumentation
 */

export type { JetStreamServer } from "./jetstream.js";
export { jetStreamServer } from "./jetstream.js";
export type { NatsServer, NatsServerOptions } from "./nats-server.js";
export {
  findNatsServer,
  HarnessError,
  probeNats,
  processAlive,
  startNatsServer,
} from "./nats-server.js";
export type { PackedPackage, PublicPackage } from "./pack.js";
export { ensureBuilt, packPublicPackages, publicPackages } from "./pack.js";
export type { StreamingMode, StreamingServerHandle, StreamingServerOptions } from "./streaming.js";
export {
  serverControlUnavailable,
  skipWithoutServerControl,
  streamingMode,
  streamingServer,
} from "./streaming.js";
