/**
 * What every command shares: the connection flags, argument parsing with usage errors,
 * number and duration parsing, and connecting with actionable error messages.
 */

import { randomBytes } from "node:crypto";
import { type ParseArgsConfig, parseArgs } from "node:util";
import { parseDuration } from "@stan-ts/server";
import { connect, ErrorCode, hasErrorCode, isStanError, type StanConnection } from "stan-ts";
import { CliError, type CliIO, UsageError } from "./io.js";

/** The default NATS URL when neither `-s/--server` nor NATS_URL is given. */
export const DEFAULT_SERVER = "nats://127.0.0.1:4222";
/** The default cluster ID when neither `-c/--cluster` nor STAN_CLUSTER_ID is given. */
export const DEFAULT_CLUSTER = "test-cluster";

/** Flags every connecting command accepts. */
export const CONNECTION_OPTIONS = {
  server: { type: "string", short: "s" },
  cluster: { type: "string", short: "c" },
  id: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const satisfies OptionsConfig;

/** The help lines of the connection flags (`-s/--server`, `-c/--cluster`, `--id`, `-h`). */
export const CONNECTION_HELP = `Connection options:
  -s, --server <url>        NATS server URL(s), comma-separated (default: $NATS_URL or ${DEFAULT_SERVER})
  -c, --cluster <id>        Streaming cluster ID (default: $STAN_CLUSTER_ID or ${DEFAULT_CLUSTER})
      --id <clientID>       Client ID (default: a generated one)
  -h, --help                Show this help
`;

/** Option definitions of a command, as `node:util` parseArgs takes them. */
export type OptionsConfig = NonNullable<ParseArgsConfig["options"]>;

/** What {@link parseCommand} returns: typed flag values and the positionals. */
export type ParsedCommand<O extends OptionsConfig> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>
>;

/** Parses a command's arguments; unknown flags and bad values become {@link UsageError}s. */
export function parseCommand<O extends OptionsConfig>(
  args: string[],
  options: O,
): ParsedCommand<O> {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Where and as whom to connect. */
export interface ConnectionSettings {
  /** NATS server URLs. */
  servers: string[];
  /** Streaming cluster ID. */
  clusterId: string;
  /** This client's ID. */
  clientId: string;
}

/** Resolves the connection flags against the environment and the defaults. */
export function connectionSettings(
  values: { server?: string | undefined; cluster?: string | undefined; id?: string | undefined },
  io: CliIO,
  role: string,
): ConnectionSettings {
  const env = io.env ?? {};
  const server = values.server ?? env.NATS_URL ?? DEFAULT_SERVER;
  const servers = server
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (servers.length === 0) throw new UsageError("--server needs a URL");
  const clusterId = values.cluster ?? env.STAN_CLUSTER_ID ?? DEFAULT_CLUSTER;
  if (clusterId === "") throw new UsageError("--cluster needs a cluster ID");
  const clientId = values.id ?? generatedClientId(role);
  if (!/^[A-Za-z0-9_-]+$/.test(clientId)) {
    throw new UsageError(`invalid --id "${clientId}": use letters, digits, "-" and "_" only`);
  }
  return { servers, clusterId, clientId };
}

/** A client ID unique enough for a CLI run: `stan-<role>-<12 hex digits>`. */
export function generatedClientId(role: string): string {
  return `stan-${role}-${randomBytes(6).toString("hex")}`;
}

/** Connects, turning the SDK's errors into {@link CliError}s with a hint. */
export async function connectCli(
  settings: ConnectionSettings,
  io: CliIO,
  extra: { maxPubAcksInflight?: number | undefined } = {},
): Promise<StanConnection> {
  try {
    return await connect({
      clusterId: settings.clusterId,
      clientId: settings.clientId,
      servers: settings.servers,
      maxPubAcksInflight: extra.maxPubAcksInflight,
      signal: io.signal,
    });
  } catch (err) {
    // a flag the SDK refuses (such as a cluster ID with a space) is a usage error: exit 2
    if (hasErrorCode(err, ErrorCode.InvalidArgument)) throw err;
    throw explainConnectError(err, settings);
  }
}

function explainConnectError(err: unknown, s: ConnectionSettings): CliError {
  const message = err instanceof Error ? err.message : String(err);
  const where = s.servers.join(",");
  if (hasErrorCode(err, ErrorCode.ConnectTimeout)) {
    return new CliError(
      message,
      `no NATS Streaming server with cluster ID "${s.clusterId}" answered on ${where}: ` +
        "give the server's cluster ID with -c/--cluster (or STAN_CLUSTER_ID), " +
        "or check that a streaming server runs there (stan server)",
      { cause: err },
    );
  }
  if (hasErrorCode(err, ErrorCode.ConnectionLost) || hasErrorCode(err, ErrorCode.ConnectFailed)) {
    return new CliError(
      message,
      `is a NATS server running at ${where}? Point -s/--server (or NATS_URL) at it, ` +
        "or start one with the streaming server: stan server (it listens on 4222)",
      { cause: err },
    );
  }
  if (isStanError(err) && /clientID already registered/.test(message)) {
    return new CliError(
      message,
      `another client is connected as "${s.clientId}": choose another --id`,
      { cause: err },
    );
  }
  return new CliError(message, undefined, { cause: err });
}

/** Parses a whole number flag within bounds. */
export function intFlag(
  name: string,
  text: string | undefined,
  dflt: number,
  min = 1,
  max = 2 ** 31 - 1,
): number {
  if (text === undefined) return dflt;
  const n = /^\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`invalid --${name} "${text}": a whole number from ${min} to ${max}`);
  }
  return n;
}

/** Parses a duration flag such as `500ms`, `30s`, `5m`, `1h` (a bare number is seconds) into ms. */
export function durationFlag(name: string, text: string): number {
  try {
    return parseDuration(text);
  } catch {
    throw new UsageError(
      `invalid --${name} "${text}": a duration such as 500ms, 30s, 5m or 1h (a bare number is seconds)`,
    );
  }
}

/** Runs `body` with a connection and always closes it, also when `body` throws. */
export async function withConnection<T>(
  sc: StanConnection,
  body: (sc: StanConnection) => Promise<T>,
): Promise<T> {
  try {
    return await body(sc);
  } finally {
    await sc.close().catch(() => {});
  }
}
