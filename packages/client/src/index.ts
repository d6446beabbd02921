/**
 * stan-ts: a modern TypeScript client for NATS Streaming.
 *
 * @example
 * ```ts
 * import { connect } from "stan-ts";
 *
 * await using sc = await connect({ clusterId: "test-cluster", clientId: "quickstart" });
 * await sc.publish("greetings", "hello");
 * await using sub = await sc.subscribe("greetings", { startAt: "first" });
 * for await (const msg of sub) {
 *   console.log(msg.sequence, msg.string());
 *   break;
 * }
 * ```
 *
 * @packageDocumentation
 */

export type {
  BatchOutcome,
  CallOptions,
  NatsConnectionLike,
  ReconnectOptions,
  SentPublish,
  SessionEvent,
} from "@stan-ts/core";
export {
  ErrorCode,
  hasErrorCode,
  isStanError,
  StanAbortError,
  StanArgumentError,
  StanConnectionError,
  StanDecodeError,
  StanError,
  StanProtocolError,
  StanServerError,
  StanSubscriptionError,
  StanTimeoutError,
} from "@stan-ts/core";
export type { Payload, StanConnection, Status } from "./connection.js";
export { connect, toBytes } from "./connection.js";
export { Message } from "./message.js";
export type { Backend, ConnectOptions, StartAt, SubscribeOptions } from "./options.js";
export {
  defaultConnectOptions,
  defaultSubscribeOptions,
  resolveConnectOptions,
  resolveSubscribeOptions,
} from "./options.js";
export type { Subscription, SubscriptionCore } from "./subscription.js";
/** @internal For backends (`@stan-ts/jetstream`): the subscription the API hands out. */
export { SubscriptionImpl } from "./subscription.js";
