import type {
  ChannelLimits,
  ChannelStore,
  ClientRecord,
  MessageLog,
  RecoveredState,
  ServerInfo,
  Store,
  StoredMsg,
  SubRecord,
} from "./types.js";

/** The longest delay setTimeout honours (2^31 - 1 ms). */
const MAX_TIMEOUT = 2_147_483_647;

/**
 * A message stored by this process run: its timestamp is kept as `ms * 1e6 + sub` ns in two
 * numbers and becomes a bigint only when read (start by time, age limit, redelivery order),
 * so the publish path allocates no BigInt.
 *
 * @internal
 */
export class StampedMsg implements StoredMsg {
  constructor(
    readonly seq: number,
    readonly bytes: Buffer,
    /** Milliseconds since the epoch. */
    readonly ms: number,
    /** Nanoseconds within that millisecond (0-999,999). */
    readonly sub: number,
  ) {}
  get timestamp(): bigint {
    return BigInt(this.ms) * 1_000_000n + BigInt(this.sub);
  }
}

/**
 * An in-memory message log with count, size and age limits (server-behaviour.md §8).
 * The file store journals through the `onAppend` hook and keeps the same log in RAM.
 *
 * @internal
 */
export class MemoryLog implements MessageLog {
  private msgs: Array<StoredMsg | undefined> = [];
  private head = 0;
  private bytes = 0;
  private firstSeq = 0;
  private lastSeq = 0;
  private lastAppended: StoredMsg | undefined;
  private ageTimer: NodeJS.Timeout | undefined;
  /** Messages dropped by limits since the log was (re)built. */
  dropped = 0;

  constructor(
    private readonly limits: ChannelLimits,
    /** Bytes counted per message on top of its encoded size (file store: 40). */
    private readonly overhead: number,
    private readonly onAppend?: (msg: StoredMsg) => void,
  ) {}

  get first(): number {
    return this.firstSeq;
  }
  get last(): number {
    return this.lastSeq;
  }
  get count(): number {
    return this.msgs.length - this.head;
  }
  get lastTimestamp(): bigint {
    return this.lastAppended?.timestamp ?? 0n;
  }

  /** Sets the sequence floor of an empty log (recovery of a channel whose messages are gone). */
  setFloor(last: number): void {
    if (this.count === 0 && last > this.lastSeq) {
      this.lastSeq = last;
      this.firstSeq = last + 1;
    }
  }

  /** Adds a message without journaling or limits (recovery). */
  load(msg: StoredMsg): void {
    if (msg.seq <= this.lastSeq) return;
    if (this.count === 0) this.firstSeq = msg.seq;
    this.msgs.push(msg);
    this.bytes += msg.bytes.length + this.overhead;
    this.lastSeq = msg.seq;
  }

  append(msg: StoredMsg): void {
    this.onAppend?.(msg);
    if (this.count === 0) this.firstSeq = msg.seq;
    this.msgs.push(msg);
    this.bytes += msg.bytes.length + this.overhead;
    this.lastSeq = msg.seq;
    this.lastAppended = msg;
    this.enforceLimits();
    if (this.limits.maxAge > 0 && !this.ageTimer) this.armAge();
  }

  /** Applies count and size limits, then the age limit. */
  enforceLimits(): void {
    const { maxMsgs, maxBytes } = this.limits;
    while (
      this.count > 1 &&
      ((maxMsgs > 0 && this.count > maxMsgs) || (maxBytes > 0 && this.bytes > maxBytes))
    ) {
      this.dropHead();
    }
    this.expire();
  }

  private dropHead(): void {
    const m = this.msgs[this.head];
    if (!m) return;
    this.msgs[this.head] = undefined;
    this.head++;
    this.bytes -= m.bytes.length + this.overhead;
    this.dropped++;
    this.firstSeq = m.seq + 1;
    if (this.head > 1024 && this.head * 2 > this.msgs.length) {
      this.msgs = this.msgs.slice(this.head);
      this.head = 0;
    }
  }

  /** Removes messages whose timestamp + maxAge <= now. */
  private expire(): void {
    const maxAge = this.limits.maxAge;
    if (maxAge <= 0) return;
    const cutoff = BigInt(Date.now() - maxAge) * 1_000_000n;
    for (;;) {
      const m = this.msgs[this.head];
      if (!m || m.timestamp > cutoff) break;
      this.dropHead();
    }
  }

  private armAge(): void {
    const m = this.msgs[this.head];
    if (!m) return;
    const due = Number(m.timestamp / 1_000_000n) + this.limits.maxAge - Date.now();
    this.ageTimer = setTimeout(
      () => {
        this.ageTimer = undefined;
        this.expire();
        this.armAge();
      },
      // capped to setTimeout's range (Node fires a longer one after 1 ms); an early fire
      // expires nothing and re-arms for the rest
      Math.min(Math.max(1, due + 1), MAX_TIMEOUT),
    );
    this.ageTimer.unref();
  }

  /** Starts the age timer after recovery. */
  startAgeTimer(): void {
    if (this.limits.maxAge > 0 && !this.ageTimer) this.armAge();
  }

  lookup(seq: number): StoredMsg | undefined {
    if (seq < this.firstSeq || seq > this.lastSeq) return undefined;
    return this.msgs[this.head + (seq - this.firstSeq)];
  }

  seqForTimestamp(ns: bigint): number {
    if (this.lastSeq === 0) return 0;
    if (this.count === 0) return this.lastSeq + 1;
    const lastMsg = this.msgs[this.msgs.length - 1]!;
    if (ns > lastMsg.timestamp) return this.lastSeq + 1;
    if (ns === lastMsg.timestamp) return lastMsg.seq;
    let lo = this.head;
    let hi = this.msgs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.msgs[mid]!.timestamp >= ns) hi = mid;
      else lo = mid + 1;
    }
    return this.msgs[lo]!.seq;
  }

  /** Iterates over held messages in sequence order. */
  *messages(): IterableIterator<StoredMsg> {
    for (let i = this.head; i < this.msgs.length; i++) {
      const m = this.msgs[i];
      if (m) yield m;
    }
  }

  flush(): void {}

  close(): void {
    if (this.ageTimer) clearTimeout(this.ageTimer);
    this.ageTimer = undefined;
  }
}

class MemoryChannel implements ChannelStore {
  readonly msgs: MemoryLog;
  constructor(limits: ChannelLimits) {
    this.msgs = new MemoryLog(limits, 0);
  }
  createSub(_rec: SubRecord): void {}
  updateSub(_rec: SubRecord): void {}
  deleteSub(_id: number): void {}
  addPending(_id: number, _seq: number): void {}
  ack(_id: number, _seq: number): void {}
  flushSubs(): void {}
  close(): void {
    this.msgs.close();
  }
}

/**
 * The memory store: nothing survives a restart; pending and ack calls are no-ops (that
 * state lives in the server's RAM).
 *
 * @internal
 */
export class MemoryStore implements Store {
  readonly kind = "MEMORY";
  private readonly channels = new Map<string, MemoryChannel>();
  constructor(private readonly limitsFor: (channel: string) => ChannelLimits) {}
  recover(): RecoveredState | undefined {
    return undefined;
  }
  init(_info: ServerInfo): void {}
  addClient(_rec: ClientRecord): void {}
  deleteClient(_id: string): void {}
  createChannel(name: string): ChannelStore {
    const c = new MemoryChannel(this.limitsFor(name));
    this.channels.set(name, c);
    return c;
  }
  deleteChannel(name: string): void {
    this.channels.get(name)?.close();
    this.channels.delete(name);
  }
  close(): void {
    for (const c of this.channels.values()) c.close();
  }
}
