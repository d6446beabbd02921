/**
 * `stan pub <subject> <data|->`: publishes a message, or each line of stdin, and waits for the
 * server's acks.
 */

import {
  CONNECTION_HELP,
  CONNECTION_OPTIONS,
  connectCli,
  connectionSettings,
  parseCommand,
  withConnection,
} from "./common.js";
import { CliError, type CliIO, lines, UsageError, untilAborted, write } from "./io.js";

/** The `stan pub --help` text. */
export const PUB_HELP = `Usage: stan pub [options] <subject> <data>
       stan pub [options] <subject> -

Publishes <data> to <subject> and waits until the server has stored it, then prints the
message's guid. With "-" instead of data, publishes each line of stdin as one message
(pipelined: many in flight at once) and prints each guid, in order, once acknowledged.
Put "--" before data that starts with "-".

Options:
  -q, --quiet               Print only the number of messages published
      --json                Check that each message is valid JSON before publishing it
                            (blank stdin lines are skipped)
${CONNECTION_HELP}
Examples:
  stan pub orders hello
  stan pub orders --json '{"id": 1}'
  cat events.jsonl | stan pub events --json -
`;

const PUB_OPTIONS = {
  ...CONNECTION_OPTIONS,
  quiet: { type: "boolean", short: "q" },
  json: { type: "boolean" },
} as const;

function checkJson(text: string): string | undefined {
  try {
    JSON.parse(text);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

async function* noInput(): AsyncGenerator<string> {}

/** Runs `stan pub`; resolves with the exit code. */
export async function pub(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommand(args, PUB_OPTIONS);
  if (values.help) {
    await write(io.stdout, PUB_HELP);
    return 0;
  }
  const [subject, data, ...extra] = positionals;
  if (subject === undefined) throw new UsageError("missing <subject>");
  if (data === undefined) {
    throw new UsageError('missing <data>: give the message, or "-" to publish each line of stdin');
  }
  if (extra.length > 0) {
    throw new UsageError(`unexpected argument "${extra[0]}" (quote a message that has spaces)`);
  }
  const json = values.json === true;
  const quiet = values.quiet === true;
  if (data !== "-" && json) {
    const problem = checkJson(data);
    if (problem !== undefined) throw new UsageError(`<data> is not valid JSON: ${problem}`);
  }
  const settings = connectionSettings(values, io, "pub");
  const sc = await connectCli(settings, io);
  return withConnection(sc, async () => {
    const signal = io.signal;
    if (data !== "-") {
      const guid = await sc.publish(subject, data, { signal });
      await write(io.stdout, quiet ? "1\n" : `${guid}\n`);
      return 0;
    }
    let count = 0;
    let failure: unknown;
    let printed: Promise<void> = Promise.resolve();
    let lineNo = 0;
    let badLine: { lineNo: number; problem: string } | undefined;
    try {
      for await (const line of untilAborted(lines(io.stdin ?? noInput()), signal)) {
        lineNo++;
        if (failure !== undefined || signal?.aborted) break;
        if (json) {
          if (line.trim() === "") continue;
          const problem = checkJson(line);
          if (problem !== undefined) {
            badLine = { lineNo, problem };
            break;
          }
        }
        const { acked } = await sc.publishAsync(subject, line);
        acked.catch(() => {}); // observed in order below
        printed = printed.then(async () => {
          try {
            const guid = await acked;
            count++;
            if (!quiet) await write(io.stdout, `${guid}\n`);
          } catch (err) {
            failure ??= err;
          }
        });
      }
    } finally {
      await printed;
    }
    // Reported once the acks of the lines before it have settled, so that the count is final.
    if (badLine !== undefined && failure === undefined) {
      failure = new CliError(
        `stdin line ${badLine.lineNo} is not valid JSON: ${badLine.problem}`,
        `the lines before it were published (${count} acknowledged); fix the line and publish from there`,
      );
    }
    if (quiet) await write(io.stdout, `${count}\n`);
    if (failure !== undefined) throw failure;
    return signal?.aborted ? 130 : 0;
  });
}
