/**
 * The publishes awaiting their PubAck, in send order, found from a PubAck's guid without a
 * hash table.
 *
 * A `Map` keyed by guid cost more than anything else on the publish path (a string hash and
 * a table insert per publish, a lookup and a delete per ack, and the garbage of a table
 * that grows and shrinks with the window). Here each publish's guid encodes its position:
 * a random 12-character prefix of this queue, then the publish's running number in base 62
 * (the 22-character NUID format every NATS Streaming guid has). A PubAck's guid gives the
 * position back in a few arithmetic steps, and the entry found there must carry exactly that
 * guid, so an unknown, repeated or forged guid finds nothing.
 *
 * @internal
 */
import { DIGITS } from "./nuid.js";

const PREFIX_LEN = 12;
const NUM_LEN = 10;
/** Length of a guid (a NUID). */
export const GUID_LEN = PREFIX_LEN + NUM_LEN;
/** base-62 value of each character code, -1 for others */
const VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < DIGITS.length; i++) VALUE[DIGITS.charCodeAt(i)] = i;

/** What the queue needs of an entry: its guid, and the running number the queue gave it. */
export interface Queued {
  readonly guid: string;
  /** Set by {@link PendingQueue.add}. */
  seq: number;
}

/** Publishes awaiting their ack, in send order (see the module doc). */
export class PendingQueue<T extends Queued> {
  /** Character codes of the next guid: the prefix, then the running number. */
  private readonly codes: number[];
  private readonly prefix: string;
  /** Running number of the next entry. */
  private nextSeq = 0;
  /** Running number of `items[0]`. */
  private base = 0;
  /** Position of the first entry that may be live. */
  private head = 0;
  private items: Array<T | undefined> = [];
  private live = 0;
  /**
   * Live entries moved out of an array that is mostly settled (see remove()), by running
   * number, in send order: the odd publish whose ack is late or lost must not keep every
   * later slot alive until its timeout.
   */
  private readonly stragglers = new Map<number, T>();

  constructor() {
    const bytes = globalThis.crypto.getRandomValues(new Uint8Array(PREFIX_LEN));
    this.codes = new Array<number>(PREFIX_LEN + NUM_LEN).fill(48);
    for (let i = 0; i < PREFIX_LEN; i++) {
      this.codes[i] = DIGITS.charCodeAt((bytes[i] as number) % 62);
    }
    this.prefix = String.fromCharCode.apply(null, this.codes.slice(0, PREFIX_LEN));
  }

  /** Entries awaiting their ack. */
  get size(): number {
    return this.live;
  }

  /** The guid the next {@link add}ed entry must have. */
  nextGuid(): string {
    const codes = this.codes;
    let n = this.nextSeq;
    for (let i = PREFIX_LEN + NUM_LEN - 1; i >= PREFIX_LEN; i--) {
      codes[i] = DIGITS.charCodeAt(n % 62);
      n = Math.floor(n / 62);
    }
    return String.fromCharCode.apply(null, codes);
  }

  /** Appends an entry whose guid came from {@link nextGuid} just before. */
  add(entry: T): void {
    entry.seq = this.nextSeq++;
    this.items.push(entry);
    this.live++;
  }

  /** The live entry with this guid, if any. */
  find(guid: string): T | undefined {
    if (guid.length !== GUID_LEN || !guid.startsWith(this.prefix)) return undefined;
    let n = 0;
    for (let i = PREFIX_LEN; i < PREFIX_LEN + NUM_LEN; i++) {
      const c = guid.charCodeAt(i);
      const v = c < 128 ? (VALUE[c] as number) : -1;
      if (v < 0) return undefined;
      n = n * 62 + v;
    }
    const e = this.at(n);
    return e !== undefined && e.guid === guid ? e : undefined;
  }

  /** The live entry whose guid is the 22 ASCII bytes at `buf[at..]`, if any (no string made). */
  findBytes(buf: Uint8Array, at: number): T | undefined {
    const codes = this.codes;
    for (let i = 0; i < PREFIX_LEN; i++) if (buf[at + i] !== codes[i]) return undefined;
    let n = 0;
    for (let i = PREFIX_LEN; i < GUID_LEN; i++) {
      const c = buf[at + i] as number;
      const v = c < 128 ? (VALUE[c] as number) : -1;
      if (v < 0) return undefined;
      n = n * 62 + v;
    }
    const e = this.at(n);
    if (e === undefined) return undefined;
    const g = e.guid;
    for (let i = PREFIX_LEN; i < GUID_LEN; i++)
      if (g.charCodeAt(i) !== buf[at + i]) return undefined;
    return e;
  }

  /** The live entry with running number `n`, if any. */
  private at(n: number): T | undefined {
    const pos = n - this.base;
    if (pos >= this.head && pos < this.items.length) return this.items[pos];
    return pos < 0 && this.stragglers.size > 0 ? this.stragglers.get(n) : undefined;
  }

  /** Array slots and stragglers held (@internal, for tests of the memory bound). */
  get slots(): number {
    return this.items.length - this.head + this.stragglers.size;
  }

  /** Removes a live entry (settled). */
  remove(entry: T): void {
    const pos = entry.seq - this.base;
    if (pos < 0) {
      if (this.stragglers.get(entry.seq) === entry) {
        this.stragglers.delete(entry.seq);
        this.live--;
      }
      return;
    }
    if (this.items[pos] !== entry) return;
    this.items[pos] = undefined;
    this.live--;
    const items = this.items;
    let head = this.head;
    while (head < items.length && items[head] === undefined) head++;
    if (head === items.length) {
      // drained: start over (the running numbers go on)
      this.base += head;
      this.items = [];
      this.head = 0;
    } else if (head >= 1024 && head * 2 >= items.length) {
      // the settled front is at least half the array: drop it
      this.base += head;
      this.items = items.slice(head);
      this.head = 0;
    } else {
      this.head = head;
      // A few live entries hold up a long, mostly settled array (an ack late or lost, until
      // its timeout): move them aside so that memory stays proportional to what is pending.
      const span = items.length - head;
      if (span > 4096 && (this.live - this.stragglers.size) * 8 < span) this.evict();
    }
  }

  private evict(): void {
    const items = this.items;
    for (let i = this.head; i < items.length; i++) {
      const e = items[i];
      if (e !== undefined) this.stragglers.set(e.seq, e);
    }
    this.base += items.length;
    this.items = [];
    this.head = 0;
  }

  /** The live entries, in send order. */
  *[Symbol.iterator](): IterableIterator<T> {
    yield* this.stragglers.values(); // older than everything in the array
    const items = this.items;
    for (let i = this.head; i < items.length; i++) {
      const e = items[i];
      if (e !== undefined) yield e;
    }
  }

  /** Removes every entry. */
  clear(): void {
    this.stragglers.clear();
    this.base += this.items.length;
    this.items = [];
    this.head = 0;
    this.live = 0;
  }
}
