/**
 * The session and ack engine, in files by job under ./session/ (this module re-exports them).
 */
export { Session } from "./session/session.js";
export { CoreSubscription } from "./session/subscription.js";
export type {
  BatchOutcome,
  ReconnectOptions,
  SentPublish,
  SessionEvent,
  SessionOptions,
  SubscribeParams,
  SubscriptionSink,
} from "./session/types.js";
