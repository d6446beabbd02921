/**
 * The `stan` command dispatcher: global flags, help, and the mapping of failures to messages
 * on stderr and exit codes (0 ok, 1 runtime error, 2 usage error, 130 interrupted).
 */

import { ErrorCode, hasErrorCode, isStanError } from "stan-ts";
import { bench } from "./bench.js";
import { CONNECTION_HELP } from "./common.js";
import { CliError, type CliIO, UsageError, write } from "./io.js";
import { migrate } from "./migrate.js";
import { pub } from "./pub.js";
import { server } from "./server.js";
import { sub } from "./sub.js";
import { VERSION } from "./version.js";

/** Exit codes of `stan`. */
export const ExitCode = {
  /** Success, also after Ctrl-C stopped `stan sub` or `stan server`. */
  Ok: 0,
  /** A runtime error: no server, wrong cluster ID, refused by the server... */
  Error: 1,
  /** A usage error: unknown command or flag, missing or invalid argument. */
  Usage: 2,
  /** Ctrl-C interrupted work that had not finished (`pub` from stdin, `bench`, connecting). */
  Interrupted: 130,
} as const;

/** The `stan --help` text. */
export const HELP = `Usage: stan <command> [options]

The NATS Streaming command line (stan-ts).

Commands:
  pub <subject> <data|->    Publish a message, or each line of stdin, and wait for the acks
  sub <subject>             Print a channel's messages (start positions, durables, queues)
  bench                     Benchmark publishers and subscribers
  server                    Run the embedded NATS Streaming server
  migrate --channel <name>  Copy a channel into a JetStream stream (resumable), then verify it

Global options:
  -h, --help                Show this help (or a command's: stan <command> --help)
  -v, --version             Show the version
${CONNECTION_HELP.replace("  -h, --help                Show this help\n", "")}
Environment:
  NATS_URL                  Default for --server
  STAN_CLUSTER_ID           Default for --cluster

Exit codes: 0 ok, 1 runtime error, 2 usage error, 130 interrupted by Ctrl-C (sub and server
exit 0 on Ctrl-C: it is how they are stopped).
`;

type Command = (args: string[], io: CliIO) => Promise<number>;

/** Every command by name; a new one is one entry here and one line in {@link HELP}. */
const COMMANDS: Record<string, Command> = { pub, sub, bench, server, migrate };

/** "pub, sub, bench, server or migrate", for the messages that list the commands. */
function commandList(): string {
  const names = Object.keys(COMMANDS);
  return names.length > 1 ? `${names.slice(0, -1).join(", ")} or ${names.at(-1)}` : names.join("");
}

/** Global flags that take a value, so that `stan -s url pub ...` finds the command. */
const VALUE_FLAGS = new Set(["-s", "--server", "-c", "--cluster", "--id"]);

/** Finds the command word among the arguments; the rest go to the command. */
function splitCommand(argv: string[]): { name: string | undefined; rest: string[] } {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === "--") break;
    if (VALUE_FLAGS.has(a)) {
      i++;
      continue;
    }
    if (a.startsWith("-")) continue;
    return { name: a, rest: [...argv.slice(0, i), ...argv.slice(i + 1)] };
  }
  return { name: undefined, rest: argv };
}

/**
 * Runs the `stan` command line in-process and resolves with its exit code. Never throws:
 * failures are written to `io.stderr`.
 *
 * @example
 * ```ts
 * const code = await run(["pub", "orders", "hello"], { stdout: process.stdout, stderr: process.stderr });
 * ```
 */
export async function run(argv: string[], io: CliIO): Promise<number> {
  const { name, rest } = splitCommand(argv);
  const label = name === undefined ? "stan" : `stan ${name}`;
  try {
    if (name === undefined) {
      if (rest.includes("--version") || rest.includes("-v")) {
        await write(io.stdout, `stan ${VERSION}\n`);
        return ExitCode.Ok;
      }
      if (rest.includes("--help") || rest.includes("-h")) {
        await write(io.stdout, HELP);
        return ExitCode.Ok;
      }
      if (rest.length === 0) {
        await write(io.stderr, HELP);
        return ExitCode.Usage;
      }
      throw new UsageError(`missing command (${commandList()}) after ${rest.join(" ")}`);
    }
    const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (!command) {
      throw new UsageError(`unknown command "${name}": ${commandList()}`);
    }
    return await command(rest, io);
  } catch (err) {
    return report(err, name, label, io);
  }
}

async function report(
  err: unknown,
  name: string | undefined,
  label: string,
  io: CliIO,
): Promise<number> {
  const helpHint =
    name !== undefined && Object.hasOwn(COMMANDS, name) ? `stan ${name} --help` : "stan --help";
  if (err instanceof UsageError || hasErrorCode(err, ErrorCode.InvalidArgument)) {
    const message = (err as Error).message.replace(/^stan: /, "");
    await write(io.stderr, `${label}: ${message}\nRun "${helpHint}" for usage.\n`);
    return ExitCode.Usage;
  }
  if (io.signal?.aborted && (hasErrorCode(err, ErrorCode.Aborted) || !isStanError(err))) {
    await write(io.stderr, `${label}: interrupted\n`);
    return ExitCode.Interrupted;
  }
  const message = err instanceof Error ? err.message : String(err);
  const text = message.startsWith("stan: ") ? message : `${label}: ${message}`;
  const hint = err instanceof CliError && err.hint ? `hint: ${err.hint}\n` : "";
  await write(io.stderr, `${text}\n${hint}`);
  return ExitCode.Error;
}
