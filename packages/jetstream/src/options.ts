import { invalidArgument, validateInt } from "@stan-ts/core";
import { StanNotSupportedError } from "./errors.js";

/**
 * A channel's limits, as NATS Streaming's `store_limits`: they become the limits of the
 * channel's stream when the backend creates it (the oldest messages go first). 0 or absent:
 * unlimited.
 */
export interface ChannelLimits {
  /** Most messages kept (the stream's `max_msgs`). */
  maxMsgs?: number | undefined;
  /** Most bytes kept (the stream's `max_bytes`). */
  maxBytes?: number | undefined;
  /** ms a message is kept (the stream's `max_age`). */
  maxAge?: number | undefined;
}

/** Options of {@link jetstream}. */
export interface JetStreamBackendOptions {
  /** Prepended to every stream name (see `streamName`). @default "" */
  streamPrefix?: string | undefined;
  /** Limits of every channel's stream. @default unlimited */
  limits?: ChannelLimits | undefined;
  /** Limits of particular channels (exact names), over `limits`. */
  channels?: Record<string, ChannelLimits> | undefined;
  /** Where streams keep messages. @default "file" */
  storage?: "file" | "memory" | undefined;
  /** Stream replicas (on a JetStream cluster: 3 survives a node's loss). @default 1 */
  replicas?: number | undefined;
  /** ms a guid is remembered for deduplicating re-sent publishes. @default 120000 */
  duplicateWindow?: number | undefined;
  /**
   * ms the consumer of a plain subscription or a (non-durable) queue group outlives its last
   * pull: its clean-up after a crash, and how long a queue group whose members all left
   * keeps its position. @default 30000
   */
  inactiveThreshold?: number | undefined;
}

/** {@link JetStreamBackendOptions} with the defaults filled in. */
export interface ResolvedBackendOptions {
  streamPrefix: string;
  limits: ChannelLimits;
  channels: Record<string, ChannelLimits>;
  storage: "file" | "memory";
  replicas: number;
  duplicateWindow: number;
  inactiveThreshold: number;
}

const INT32_MAX = 2 ** 31 - 1;

/** STAN channel limits that JetStream streams do not have. */
const UNSUPPORTED_LIMITS: Record<string, string> = {
  maxSubsPerChannel: "JetStream has no per-stream consumer-count limit that refuses subscribers",
  maxSubscriptions: "JetStream has no per-stream consumer-count limit that refuses subscribers",
  maxInactivity: "JetStream streams are not deleted for inactivity; delete unused streams yourself",
};

function checkLimits(l: ChannelLimits | undefined, where: string): ChannelLimits {
  if (l === undefined) return {};
  if (typeof l !== "object" || l === null) invalidArgument(`stan: ${where} must be an object`);
  for (const key of Object.keys(l)) {
    const why = UNSUPPORTED_LIMITS[key];
    if (why)
      throw new StanNotSupportedError(
        `stan: channel limit ${key} (${where}) is not supported on JetStream: ${why}`,
      );
  }
  const num = (v: number | undefined, what: string) =>
    v === undefined || v === 0
      ? undefined
      : validateInt(v, `${where}.${what}`, 1, Number.MAX_SAFE_INTEGER);
  return {
    maxMsgs: num(l.maxMsgs, "maxMsgs"),
    maxBytes: num(l.maxBytes, "maxBytes"),
    maxAge: num(l.maxAge, "maxAge (ms)"),
  };
}

/** Validates the backend's options and fills in the defaults. */
export function resolveBackendOptions(o: JetStreamBackendOptions = {}): ResolvedBackendOptions {
  const prefix = o.streamPrefix ?? "";
  if (!/^[A-Za-z0-9_-]*$/.test(prefix)) {
    invalidArgument(`stan: invalid streamPrefix "${prefix}": only letters, digits, '-' and '_'`);
  }
  if (o.storage !== undefined && o.storage !== "file" && o.storage !== "memory") {
    invalidArgument(`stan: invalid storage ${JSON.stringify(o.storage)}: "file" or "memory"`);
  }
  const channels: Record<string, ChannelLimits> = {};
  for (const [name, l] of Object.entries(o.channels ?? {})) {
    channels[name] = checkLimits(l, `channels[${JSON.stringify(name)}]`);
  }
  return {
    streamPrefix: prefix,
    limits: checkLimits(o.limits, "limits"),
    channels,
    storage: o.storage ?? "file",
    replicas: o.replicas === undefined ? 1 : validateInt(o.replicas, "replicas", 1, 5),
    duplicateWindow:
      o.duplicateWindow === undefined
        ? 120_000
        : validateInt(o.duplicateWindow, "duplicateWindow (ms)", 100, INT32_MAX),
    inactiveThreshold:
      o.inactiveThreshold === undefined
        ? 30_000
        : validateInt(o.inactiveThreshold, "inactiveThreshold (ms)", 100, INT32_MAX),
  };
}
