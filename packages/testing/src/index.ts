/**
 * The stan-ts test harness: real servers on free loopback ports, disposable with `await using`.
 *
 * @packageDocumentation
 */

export type {
  Serverz,
  StanCluster,
  StanClusterOptions,
  StanFtPair,
  StanFtPairOptions,
  StanGroupOptions,
  StanNode,
  StanServerGroup,
} from "./cluster.js";
export { startStanCluster, startStanFtPair, streamingBinaryUnavailable } from "./cluster.js";
export type { InteropTool, InteropToolName } from "./interop.js";
export { interopBin, interopTool } from "./interop.js";
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
export { ensureBuilt, npmEnv, npmInstall, packPublicPackages, publicPackages } from "./pack.js";
export type { PortLock } from "./port-lock.js";
export { lockPort } from "./port-lock.js";
export { seededRandom } from "./random.js";
export type { StreamingMode, StreamingServerHandle, StreamingServerOptions } from "./streaming.js";
export {
  serverControlUnavailable,
  skipWithoutServerControl,
  streamingMode,
  streamingServer,
} from "./streaming.js";
