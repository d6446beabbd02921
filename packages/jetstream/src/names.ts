// How channels and subscriptions are named on JetStream. Stream and consumer names may not
// contain `.`, `*`, `>`, whitespace or path separators, while STAN channel names are subjects
// (`orders.eu`) and durable names may hold anything but whitespace. So names are escaped: ASCII
// letters, digits and `-` stay, every other UTF-8 byte becomes `_XX` (upper-case hex). The
// escaping is injective (no two channels share a stream), and stable, so `stan migrate` and any
// other tool can compute the same name.
import { createHash } from "node:crypto";

const utf8 = new TextEncoder();
const HEX = "0123456789ABCDEF";
/** Longer names are shortened with a hash (file-store directories are named after them). */
const MAX_NAME = 200;

/** Escapes `text` into a valid JetStream stream or consumer name (see the file's comment). */
export function escapeName(text: string): string {
  let out = "";
  for (const b of utf8.encode(text)) {
    const keep =
      (b >= 0x30 && b <= 0x39) ||
      (b >= 0x41 && b <= 0x5a) ||
      (b >= 0x61 && b <= 0x7a) ||
      b === 0x2d;
    out += keep ? String.fromCharCode(b) : `_${HEX[b >> 4]}${HEX[b & 15]}`;
  }
  if (out.length <= MAX_NAME) return out;
  const hash = createHash("sha256").update(text).digest("hex").slice(0, 32).toUpperCase();
  return `${out.slice(0, MAX_NAME - 34)}__${hash}`;
}

/**
 * The stream that holds a channel: `prefix` + the escaped channel name, e.g. `orders` for
 * `orders`, `orders_2Eeu` for `orders.eu`. One stream per channel keeps sequences per channel.
 */
export function streamName(channel: string, prefix = ""): string {
  return `${prefix}${escapeName(channel)}`;
}

/** What a subscription is on JetStream, by the STAN options it was made with. */
export type ConsumerKind = "durable" | "durable-queue" | "queue" | "plain";

/**
 * The consumer name of a subscription. A durable belongs to its client (as in STAN: clientID +
 * durable name), a durable queue group and a queue group to their group; a plain subscription
 * gets a unique name. A clientID holds no `:`, nor does a durable queue's durable name, so the
 * joined keys are unambiguous before escaping.
 */
export function consumerName(
  kind: ConsumerKind,
  clientId: string,
  durableName: string | undefined,
  queue: string | undefined,
  unique: string,
): string {
  switch (kind) {
    case "durable":
      return escapeName(`D:${clientId}:${durableName}`);
    case "durable-queue":
      return escapeName(`Q:${durableName}:${queue}`);
    case "queue":
      return escapeName(`q:${queue}`);
    default:
      return escapeName(`e:${clientId}:${unique}`);
  }
}
