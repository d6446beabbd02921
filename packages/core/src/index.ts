/**
 * @stan-ts/core: the NATS Streaming session and ack engine behind `stan-ts`.
 *
 * It talks to NATS through the structural {@link NatsConnectionLike} interface and imports
 * nothing from Node.js. Applications use the `stan-ts` package; this one is for SDK authors.
 *
 * @packageDocumentation
 */

export type { CallOptions } from "./cancel.js";
export { abortError, withCancel } from "./cancel.js";
export type { DecodedMsg } from "./codec.js";
export {
  decodeMsgProto,
  decodePubAck,
  encodeAck,
  encodeConstField,
  encodePubMsg,
} from "./codec.js";
export {
  ErrorCode,
  hasErrorCode,
  isStanError,
  Messages,
  StanAbortError,
  StanArgumentError,
  StanConnectionError,
  StanDecodeError,
  StanError,
  StanProtocolError,
  StanServerError,
  StanSubscriptionError,
  StanTimeoutError,
} from "./errors.js";
export { FrameSubjectError, FrameWriter, isFrameSubject } from "./frames.js";
export { createInbox, Nuid, nuid } from "./nuid.js";
export { decodeText, isAscii, RecentText } from "./recent.js";
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
export type { NatsConnectionLike, NatsMsgLike, NatsSubscriptionLike } from "./transport.js";
export { isNoResponders, isRequestTimeout, isStatusMessage } from "./transport.js";
export {
  clusterIdProblem,
  invalidArgument,
  MAX_SUBJECT_BYTES,
  validateClientId,
  validateClusterId,
  validateInt,
  validateName,
  validateSubject,
} from "./validate.js";
