/**
 * Channel limits: global values plus per-channel entries whose keys may use the `*` and
 * `>` wildcards (server-behaviour.md §1).
 */

/** Limits of one channel. 0 means unlimited. Durations are milliseconds. */
export interface ChannelLimitValues {
  /** Maximum stored messages (`-mm`). */
  maxMsgs: number;
  /** Maximum stored bytes (`-mb`). */
  maxBytes: number;
  /** Maximum message age (`-ma`). */
  maxAge: number;
  /** Maximum subscriptions (`-msu`). */
  maxSubsPerChannel: number;
  /** Delete the channel after this long without subscription or message (`-mi`). */
  maxInactivity: number;
}

/**
 * A per-channel entry: a field left out or set to 0 inherits from the closest wider entry,
 * else from the global value; a negative value means unlimited.
 */
export type ChannelLimitOverrides = Partial<ChannelLimitValues>;

const FIELDS = ["maxMsgs", "maxBytes", "maxAge", "maxSubsPerChannel", "maxInactivity"] as const;

/** True when the NATS subject `name` matches `pattern` (tokens, `*`, trailing `>`). */
export function subjectMatches(pattern: string, name: string): boolean {
  const p = pattern.split(".");
  const n = name.split(".");
  for (let i = 0; i < p.length; i++) {
    const t = p[i];
    if (t === ">") return n.length > i;
    if (i >= n.length) return false;
    if (t !== "*" && t !== n[i]) return false;
  }
  return p.length === n.length;
}

/** Orders patterns from the most specific: literal tokens count most, `>` least. */
function specificity(pattern: string): number {
  let score = 0;
  for (const t of pattern.split(".")) score += t === ">" ? 0 : t === "*" ? 1 : 1000;
  return score * 10 + (pattern.includes(">") ? 0 : 1);
}

/**
 * Builds the resolver of each channel's effective limits.
 *
 * @throws Error when a global limit is negative.
 */
export function limitsResolver(
  global: ChannelLimitValues,
  perChannel: Record<string, ChannelLimitOverrides> = {},
): (channel: string) => ChannelLimitValues {
  for (const f of FIELDS) {
    if (!(global[f] >= 0)) throw new Error(`${f} must be >= 0, got ${global[f]}`);
  }
  const entries = Object.entries(perChannel).sort((a, b) => specificity(b[0]) - specificity(a[0]));
  const cache = new Map<string, ChannelLimitValues>();
  return (channel) => {
    const hit = cache.get(channel);
    if (hit) return hit;
    const out = { ...global };
    const matching = entries.filter(([p]) => subjectMatches(p, channel));
    for (const f of FIELDS) {
      const v = matching.map(([, o]) => o[f] ?? 0).find((x) => x !== 0);
      if (v !== undefined) out[f] = Math.max(0, v);
    }
    cache.set(channel, out);
    return out;
  };
}
