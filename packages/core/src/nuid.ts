/** The 62 characters of a NUID, by value. */
export const DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const DIGIT_CODES = Array.from(DIGITS, (c) => c.charCodeAt(0));
const BASE = 62;
const PREFIX_LEN = 12;
const SEQ_LEN = 10;
// 62^10 is past 2^53: the sequence is kept below 2^52 so it stays an exact integer.
const SEQ_LIMIT = 2 ** 52;
const MIN_INC = 33;
const MAX_INC = 333;

function randomInt(maxExclusive: number): number {
  const buf = new Uint32Array(1);
  globalThis.crypto.getRandomValues(buf);
  return (buf[0] ?? 0) % maxExclusive;
}

/**
 * Unique identifiers in the NUID format NATS uses (22 base-62 characters): a random 12-character
 * prefix and a 10-character sequence advanced by a random increment, so generating one costs a
 * few arithmetic operations and no system call.
 */
export class Nuid {
  private seq = 0;
  private inc = 0;
  /** Character codes of the identifier: the prefix, then the sequence (rewritten each time). */
  private readonly codes: number[] = new Array<number>(PREFIX_LEN + SEQ_LEN).fill(48);

  constructor() {
    this.reset();
  }

  /** The next identifier. */
  next(): string {
    this.seq += this.inc;
    if (this.seq >= SEQ_LIMIT) this.reset();
    let n = this.seq;
    const codes = this.codes;
    for (let i = PREFIX_LEN + SEQ_LEN - 1; i >= PREFIX_LEN; i--) {
      codes[i] = DIGIT_CODES[n % BASE] as number;
      n = Math.floor(n / BASE);
    }
    // one flat string in one call (no join, no concatenation rope)
    return String.fromCharCode.apply(null, codes);
  }

  private reset(): void {
    const bytes = new Uint8Array(PREFIX_LEN);
    globalThis.crypto.getRandomValues(bytes);
    for (let i = 0; i < PREFIX_LEN; i++) {
      this.codes[i] = DIGIT_CODES[(bytes[i] as number) % BASE] as number;
    }
    this.seq = randomInt(2 ** 30) * 1000;
    this.inc = MIN_INC + randomInt(MAX_INC - MIN_INC);
  }
}

/** A process-wide {@link Nuid}. */
export const nuid: Nuid = new Nuid();

/** A fresh NATS inbox subject, `_INBOX.<nuid>` (or under the given prefix). */
export function createInbox(prefix = "_INBOX"): string {
  return `${prefix}.${nuid.next()}`;
}
