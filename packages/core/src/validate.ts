import { ErrorCode, StanArgumentError } from "./errors.js";

const CLIENT_ID = /^[a-zA-Z0-9_-]+$/;

/**
 * Longest channel name, in UTF-8 bytes. NATS has no hard limit, but a streaming server's file
 * store names a directory after each channel, and file names stop at 255 bytes.
 */
export const MAX_SUBJECT_BYTES = 255;
const utf8 = new TextEncoder();

function fail(message: string): never {
  throw new StanArgumentError(ErrorCode.InvalidArgument, message);
}

/** Checks a clientID the way nats-streaming-server does (`^[a-zA-Z0-9_-]+$`). */
export function validateClientId(clientId: unknown): string {
  if (typeof clientId !== "string" || clientId.length === 0) {
    fail("stan: clientID missing: give a non-empty clientId of letters, digits, '-' or '_'");
  }
  if (!CLIENT_ID.test(clientId)) {
    fail(
      `stan: invalid clientID "${clientId}": only alphanumeric and \`-\` or \`_\` characters allowed`,
    );
  }
  return clientId;
}

const SERVER_CLUSTER_ID = /^[^\s*>.]+(\.[^\s*>.]+)*$/u;

/**
 * Why a streaming server cannot take `clusterId` (`-cid` of `stan-server` and `stan server`),
 * or undefined when it can: clients reach the server on subjects made from it, so it must be
 * a valid subject without wildcards, whitespace or empty tokens.
 *
 * @example
 * ```ts
 * clusterIdProblem("bad id"); // 'invalid cluster ID "bad id": no spaces, ...'
 * ```
 */
export function clusterIdProblem(clusterId: string): string | undefined {
  if (clusterId === "") return "-cid/--cluster_id needs a cluster ID (for example test-cluster)";
  if (SERVER_CLUSTER_ID.test(clusterId)) return undefined;
  return (
    `invalid cluster ID "${clusterId}": no spaces, wildcards (* >) or empty tokens ` +
    "(leading, trailing or double '.'), since clients reach the server on subjects made from it"
  );
}

/** Checks a cluster ID (used as a NATS subject token). */
export function validateClusterId(clusterId: unknown): string {
  if (typeof clusterId !== "string" || clusterId.length === 0) {
    fail("stan: clusterId missing: give the streaming server's cluster ID (e.g. test-cluster)");
  }
  if (/[\s*>]/.test(clusterId) || clusterId.startsWith(".") || clusterId.endsWith(".")) {
    fail(`stan: invalid clusterId "${clusterId}": no spaces, wildcards or leading/trailing '.'`);
  }
  return clusterId;
}

/**
 * Checks a channel name: a NATS subject without wildcards, empty tokens, leading or trailing
 * `.`, whitespace or `/` (the server refuses those, the last for its file store).
 */
export function validateSubject(subject: unknown, what = "subject"): string {
  if (typeof subject !== "string" || subject.length === 0) {
    fail(`stan: invalid subject: ${what} must be a non-empty string`);
  }
  if (/[*>]/.test(subject)) {
    fail(`stan: invalid subject "${subject}": wildcards (* and >) are not allowed in a channel`);
  }
  if (/[\s/]/.test(subject)) {
    fail(`stan: invalid subject "${subject}": whitespace and '/' are not allowed`);
  }
  if (subject.startsWith(".") || subject.endsWith(".") || subject.includes("..")) {
    fail(`stan: invalid subject "${subject}": empty tokens (leading, trailing or double '.')`);
  }
  // UTF-8 takes at least one byte per UTF-16 unit: count bytes only when it could matter.
  if (subject.length * 3 > MAX_SUBJECT_BYTES) {
    const bytes = utf8.encode(subject).length;
    if (bytes > MAX_SUBJECT_BYTES) {
      fail(
        `stan: invalid subject "${subject.slice(0, 32)}...": ${bytes} bytes, over the limit of ${MAX_SUBJECT_BYTES} (a file store keeps each channel in a directory of that name)`,
      );
    }
  }
  return subject;
}

/** Checks an optional name (queue group, durable name): non-empty, no whitespace. */
export function validateName(value: unknown, what: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value.length === 0) {
    fail(`stan: invalid ${what}: must be a non-empty string when given`);
  }
  if (/\s/.test(value)) fail(`stan: invalid ${what} "${value}": whitespace is not allowed`);
  return value;
}

/** Checks an integer option within bounds. */
export function validateInt(value: unknown, what: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    fail(`stan: invalid ${what}: ${String(value)} (expected an integer from ${min} to ${max})`);
  }
  return value;
}

/** Throws the argument error for `message`. */
export function invalidArgument(message: string): never {
  return fail(message);
}

/** The longest delay a timer accepts (ms); setTimeout fires at once beyond it. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * Checks a call's `timeout` (ms): a finite number from 0 to 2^31-1. `NaN` or `Infinity`
 * would never expire and hold their place (a publish window slot) forever.
 */
export function validateTimeout(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > MAX_TIMER_MS) {
    fail(
      `stan: invalid ${what} timeout: ${String(value)} (expected a finite number of milliseconds from 0 to ${MAX_TIMER_MS})`,
    );
  }
  return value;
}
