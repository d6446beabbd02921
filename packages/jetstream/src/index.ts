/**
 * @stan-ts/jetstream: the stan-ts API on NATS JetStream. Pass `backend: jetstream()` to
 * `connect()` of `stan-ts` and keep publishers and consumers as they are; see the package's
 * README for how channels, start positions, durables, queue groups and acks map to streams
 * and consumers, and what differs.
 *
 * @example
 * ```ts
 * import { connect } from "stan-ts";
 * import { jetstream } from "@stan-ts/jetstream";
 *
 * await using sc = await connect({
 *   clusterId: "test-cluster",
 *   clientId: "worker-1",
 *   servers: "nats://127.0.0.1:4222",
 *   backend: jetstream(),
 * });
 * ```
 *
 * @packageDocumentation
 */

export { jetstream } from "./backend.js";
export { isNotSupported, StanNotSupportedError } from "./errors.js";
export type { ConsumerKind } from "./names.js";
export { consumerName, escapeName, streamName } from "./names.js";
export type { ChannelLimits, JetStreamBackendOptions } from "./options.js";
