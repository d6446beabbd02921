/**
 * `stan sub <subject>`: prints the messages of a channel as text or JSON lines until Ctrl-C
 * or `--count` messages.
 */

import type { Message, StartAt } from "stan-ts";
import {
  CONNECTION_HELP,
  CONNECTION_OPTIONS,
  connectCli,
  connectionSettings,
  durationFlag,
  intFlag,
  type ParsedCommand,
  parseCommand,
  withConnection,
} from "./common.js";
import { type CliIO, UsageError, write } from "./io.js";

/** The `stan sub --help` text. */
export const SUB_HELP = `Usage: stan sub [options] <subject>

Subscribes to <subject> and prints each message on stdout until Ctrl-C (or --count).
Ctrl-C closes the subscription without unsubscribing, so a durable keeps its position,
and exits 0.

Start position (one of them; a durable that resumes continues where it was):
      --new-only            Only messages published from now on (default)
      --last                The last stored message, then new ones
      --all, --first        Every stored message
      --seq <n>             From sequence <n>
      --since <duration>    Messages stored in the last <duration>, e.g. 30s, 5m, 1h
      --time <date>         Messages stored since an ISO 8601 date, e.g. 2024-05-01T12:00:00Z

Subscription:
      --durable <name>      Durable subscription: the server keeps its position
      --queue <group>       Join a queue group: each message goes to one member
      --manual-ack          Acknowledge each message only once it is printed
                            (default: as soon as it is received)
      --max-inflight <n>    Most unacknowledged messages in flight (default: 1024)
      --ack-wait <duration> Redelivery delay of unacknowledged messages, >= 1s (default: 30s)

Output:
  -n, --count <n>           Exit after <n> messages
      --format <text|json>  text: "[#seq] time subject: data" (default);
                            json: one object per line with subject, sequence (a string),
                            timestamp (ISO), redelivered, data (UTF-8 text, or base64 with
                            "encoding": "base64" when the payload is not valid UTF-8)
${CONNECTION_HELP}
Examples:
  stan sub orders --all
  stan sub orders --durable billing --manual-ack --format json
  stan sub orders --since 5m --count 10
`;

const SUB_OPTIONS = {
  ...CONNECTION_OPTIONS,
  "new-only": { type: "boolean" },
  last: { type: "boolean" },
  all: { type: "boolean" },
  first: { type: "boolean" },
  seq: { type: "string" },
  since: { type: "string" },
  time: { type: "string" },
  durable: { type: "string" },
  queue: { type: "string" },
  "manual-ack": { type: "boolean" },
  "max-inflight": { type: "string" },
  "ack-wait": { type: "string" },
  count: { type: "string", short: "n" },
  format: { type: "string" },
} as const;

type SubValues = ParsedCommand<typeof SUB_OPTIONS>["values"];

/** The start position chosen by the flags, and how to describe it. */
function startAt(v: SubValues): { start: StartAt; label: string } {
  const chosen: Array<{ flag: string; start: StartAt; label: string }> = [];
  if (v["new-only"]) chosen.push({ flag: "--new-only", start: "new-only", label: "new only" });
  if (v.last) chosen.push({ flag: "--last", start: "last-received", label: "last received" });
  if (v.all) chosen.push({ flag: "--all", start: "first", label: "all available" });
  if (v.first) chosen.push({ flag: "--first", start: "first", label: "all available" });
  if (v.seq !== undefined) {
    if (!/^\d+$/.test(v.seq) || BigInt(v.seq) < 1n || BigInt(v.seq) >= 2n ** 64n) {
      throw new UsageError(`invalid --seq "${v.seq}": a sequence number >= 1`);
    }
    chosen.push({
      flag: "--seq",
      start: { sequence: BigInt(v.seq) },
      label: `sequence ${v.seq}`,
    });
  }
  if (v.since !== undefined) {
    const ago = durationFlag("since", v.since);
    chosen.push({ flag: "--since", start: { ago }, label: `the last ${v.since}` });
  }
  if (v.time !== undefined) {
    const ms = Date.parse(v.time);
    if (Number.isNaN(ms)) {
      throw new UsageError(
        `invalid --time "${v.time}": an ISO 8601 date, e.g. 2024-05-01T12:00:00Z`,
      );
    }
    if (ms > Date.now()) {
      throw new UsageError(`invalid --time "${v.time}": it is in the future (use --new-only)`);
    }
    const time = new Date(ms);
    chosen.push({ flag: "--time", start: { time }, label: `time ${time.toISOString()}` });
  }
  if (chosen.length > 1) {
    throw new UsageError(
      `choose one start position, not ${chosen.map((c) => c.flag).join(" and ")}`,
    );
  }
  return chosen[0] ?? { start: "new-only", label: "new only" };
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

function utf8OrUndefined(data: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(data);
  } catch {
    return undefined;
  }
}

/** Formats a message as one JSON line (see {@link SUB_HELP} for the fields). */
export function formatJson(msg: Message): string {
  const text = utf8OrUndefined(msg.data);
  const data =
    text === undefined
      ? { data: Buffer.from(msg.data).toString("base64"), encoding: "base64" }
      : { data: text };
  return `${JSON.stringify({
    subject: msg.subject,
    sequence: msg.sequence.toString(),
    timestamp: msg.timestamp.toISOString(),
    redelivered: msg.redelivered,
    ...data,
  })}\n`;
}

/** Formats a message as one human-readable line. */
export function formatText(msg: Message): string {
  const text = utf8OrUndefined(msg.data);
  const body =
    text ?? `<${msg.data.length} bytes, base64> ${Buffer.from(msg.data).toString("base64")}`;
  const mark = msg.redelivered ? " (redelivered)" : "";
  return `[#${msg.sequence}] ${msg.timestamp.toISOString()} ${msg.subject}${mark}: ${body}\n`;
}

/** Runs `stan sub`; resolves with the exit code. */
export async function sub(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommand(args, SUB_OPTIONS);
  if (values.help) {
    await write(io.stdout, SUB_HELP);
    return 0;
  }
  const [subject, ...extra] = positionals;
  if (subject === undefined) throw new UsageError("missing <subject>");
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const { start, label } = startAt(values);
  const format = values.format ?? "text";
  if (format !== "text" && format !== "json") {
    throw new UsageError(`invalid --format "${format}": text or json`);
  }
  const formatter = format === "json" ? formatJson : formatText;
  const count = intFlag("count", values.count, Number.POSITIVE_INFINITY);
  const maxInflight = intFlag("max-inflight", values["max-inflight"], 1024);
  let ackWait: number | undefined;
  if (values["ack-wait"] !== undefined) {
    ackWait = durationFlag("ack-wait", values["ack-wait"]);
    if (ackWait < 1000) {
      throw new UsageError(`invalid --ack-wait "${values["ack-wait"]}": at least 1s`);
    }
  }
  const manualAck = values["manual-ack"] === true;
  const settings = connectionSettings(values, io, "sub");
  const signal = io.signal;

  const sc = await connectCli(settings, io);
  return withConnection(sc, async () => {
    // Acks are always sent by the CLI itself: on receipt, or after printing (--manual-ack).
    const subscription = await sc.subscribe(subject, {
      startAt: start,
      durableName: values.durable,
      queue: values.queue,
      manualAcks: true,
      maxInflight,
      ackWait,
      signal,
    });
    const close = () => void subscription.close().catch(() => {});
    signal?.addEventListener("abort", close, { once: true });
    if (signal?.aborted) close();
    const details = [
      `client ${settings.clientId}`,
      values.durable !== undefined ? `durable ${values.durable}` : undefined,
      values.queue !== undefined ? `queue ${values.queue}` : undefined,
      `start: ${label}`,
    ].filter((d) => d !== undefined);
    await write(
      io.stderr,
      `stan: listening on "${subject}" (${details.join(", ")}); Ctrl-C to stop\n`,
    );
    let received = 0;
    const ack = (msg: Message): void => {
      try {
        msg.ack();
      } catch (err) {
        // Closed by Ctrl-C meanwhile: the server redelivers the message later.
        if (!subscription.isClosed) throw err;
      }
    };
    try {
      if (count > 0) {
        for await (const msg of subscription) {
          if (!manualAck) ack(msg);
          await write(io.stdout, formatter(msg));
          if (manualAck) ack(msg);
          if (++received >= count) break;
        }
      }
    } finally {
      signal?.removeEventListener("abort", close);
      await subscription.close().catch(() => {});
    }
    const error = await subscription.closed;
    if (error) throw error;
    return 0;
  });
}
