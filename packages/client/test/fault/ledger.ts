import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import {
  isStanError,
  type StanConnection,
  StanConnectionError,
  type Status,
  type Subscription,
} from "../../src/index.js";

/**
 * Counts every message of a fault scenario: what publishers sent and got acked, what
 * subscribers received (first deliveries and duplicates), and what was acked but never
 * delivered (lost). Payloads are `<publisher>:<n>`, n counting up from 1 per publisher.
 */
export class Ledger {
  sent = 0;
  acked = 0;
  failed = 0;
  deliveries = 0;
  duplicated = 0;
  /** First deliveries whose n was below an earlier first delivery of the same publisher. */
  orderViolations = 0;
  readonly failures = new Map<string, number>();
  private readonly ackedIds = new Set<string>();
  private readonly seen = new Set<string>();
  private readonly lastFirst = new Map<string, number>();
  private readonly watchers = new Set<() => void>();
  /** Lowest channel sequence each message was delivered with (a re-sent publish gets another). */
  private readonly minSeq = new Map<string, bigint>();

  /** `checkOrder: false` for a queue group, whose members process concurrently. */
  constructor(
    readonly name: string,
    private readonly checkOrder = true,
  ) {}

  onSend(): void {
    this.sent++;
  }

  onAck(id: string): void {
    this.acked++;
    this.ackedIds.add(id);
    this.changed();
  }

  onFail(err: unknown): void {
    this.failed++;
    const code = isStanError(err) ? err.code : String(err);
    this.failures.set(code, (this.failures.get(code) ?? 0) + 1);
    this.changed();
  }

  onDeliver(id: string, sequence?: bigint): void {
    this.deliveries++;
    if (sequence !== undefined) {
      const had = this.minSeq.get(id);
      if (had === undefined || sequence < had) this.minSeq.set(id, sequence);
    }
    if (this.seen.has(id)) {
      this.duplicated++;
    } else {
      this.seen.add(id);
      const sep = id.lastIndexOf(":");
      const pub = id.slice(0, sep);
      const n = Number(id.slice(sep + 1));
      if (this.checkOrder && n < (this.lastFirst.get(pub) ?? 0)) this.orderViolations++;
      else this.lastFirst.set(pub, Math.max(n, this.lastFirst.get(pub) ?? 0));
    }
    this.changed();
  }

  /**
   * Store order: per publisher, messages taken in channel-sequence order must have increasing
   * n. Unlike delivery order, this is not disturbed by redeliveries coming after newer messages.
   */
  storeOrderViolations(): number {
    const byPub = new Map<string, Array<[bigint, number]>>();
    for (const [id, seq] of this.minSeq) {
      const sep = id.lastIndexOf(":");
      const pub = id.slice(0, sep);
      const list = byPub.get(pub) ?? [];
      byPub.set(pub, list);
      list.push([seq, Number(id.slice(sep + 1))]);
    }
    let violations = 0;
    for (const list of byPub.values()) {
      list.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      let max = 0;
      for (const [, n] of list) {
        if (n < max) violations++;
        else max = n;
      }
    }
    return violations;
  }

  /** Distinct messages delivered. */
  get delivered(): number {
    return this.seen.size;
  }

  /** Acked by the server, never delivered. */
  lostIds(): string[] {
    return [...this.ackedIds].filter((id) => !this.seen.has(id));
  }

  isDelivered(id: string): boolean {
    return this.seen.has(id);
  }

  private changed(): void {
    for (const w of [...this.watchers]) w();
  }

  /** Resolves once `test` holds, re-checked on every ack, failure and delivery. */
  waitFor(test: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
    return new Promise((resolve, reject) => {
      if (test()) return resolve();
      const check = () => {
        if (!test()) return;
        clearTimeout(timer);
        this.watchers.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.watchers.delete(check);
        reject(
          new Error(
            `${this.name}: timed out after ${timeoutMs} ms waiting for ${what}; ${this.line()}`,
          ),
        );
      }, timeoutMs);
      this.watchers.add(check);
    });
  }

  /** Waits until every acked message was delivered at least once. */
  allDelivered(timeoutMs = 15_000): Promise<void> {
    return this.waitFor(
      () => this.lostIds().length === 0,
      "every acked message to arrive",
      timeoutMs,
    );
  }

  line(extra = ""): string {
    const f = [...this.failures].map(([k, v]) => `${k}=${v}`).join(",");
    return (
      `[fault] ${this.name}: sent=${this.sent} acked=${this.acked} failed=${this.failed}` +
      `${f ? `(${f})` : ""} delivered=${this.delivered} duplicated=${this.duplicated}` +
      ` lost=${this.lostIds().length} order-violations=${this.checkOrder ? this.orderViolations : "n/a"}` +
      `${this.minSeq.size > 0 ? ` store-order-violations=${this.storeOrderViolations()}` : ""}` +
      `${extra ? ` ${extra}` : ""}`
    );
  }

  /** Prints the one summary line of the scenario. */
  print(extra = ""): string {
    const l = this.line(extra);
    console.log(l);
    return l;
  }
}

/** A pipelined publisher feeding one or more ledgers; `stop()` ends it after its acks settle. */
export interface Publisher {
  readonly name: string;
  /** Stops publishing and resolves when every publish it made has settled. */
  stop(): Promise<void>;
}

export function startPublisher(
  sc: StanConnection,
  subject: string,
  name: string,
  ledgers: Ledger[],
  max = Number.POSITIVE_INFINITY,
): Publisher {
  let stopping = false;
  const settles: Array<Promise<void>> = [];
  const loop = (async () => {
    for (let n = 1; n <= max && !stopping; n++) {
      const id = `${name}:${n}`;
      for (const l of ledgers) l.onSend();
      try {
        const { acked } = await sc.publishAsync(subject, id);
        settles.push(
          acked.then(
            () => {
              for (const l of ledgers) l.onAck(id);
            },
            (err: unknown) => {
              for (const l of ledgers) l.onFail(err);
            },
          ),
        );
      } catch (err) {
        for (const l of ledgers) l.onFail(err);
        if (err instanceof StanConnectionError) break; // the connection ended for good
      }
      if (settles.length > 4096) await Promise.all(settles.splice(0, 2048));
    }
  })();
  return {
    name,
    stop: async () => {
      stopping = true;
      await loop;
      await Promise.all(settles);
    },
  };
}

/** Consumes a subscription into a ledger until it ends (auto-ack: acked when the next is pulled). */
export function consume(
  sub: Subscription,
  ledger: Ledger,
  onMsg?: (id: string) => Promise<void> | void,
): Promise<void> {
  return (async () => {
    try {
      for await (const m of sub) {
        const id = m.string();
        const work = onMsg?.(id); // its synchronous part runs before the ledger's watchers
        ledger.onDeliver(id, m.sequence);
        await work;
      }
    } catch {
      // ended by its connection: the test looks at the counts
    }
  })();
}

/** Resolves with the next status of the given type; rejects when the connection ends first. */
export function when(
  sc: StanConnection,
  type: Status["type"],
  timeoutMs = 15_000,
): Promise<Status> {
  const seen = (async () => {
    for await (const s of sc.status()) if (s.type === type) return s;
    throw new Error(`connection ended before "${type}"`);
  })();
  return withTimeout(seen, timeoutMs, `status "${type}"`);
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** Heap in MB, for printing. */
export function heapMb(): number {
  return Math.round(process.memoryUsage().heapUsed / 1e5) / 10;
}

const serverBin = fileURLToPath(new URL("../../../server/src/bin.ts", import.meta.url));

/**
 * The embedded streaming server in a child process (`stan-server`), so that the test process's
 * heap holds only the client side. Resolves once it listens.
 */
export function spawnStanServer(natsUrl: string, args: string[] = []): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "--conditions=@stan-ts/source",
      serverBin,
      "-ns",
      natsUrl,
      "-l",
      "info",
      ...args,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  if (child.pid !== undefined) {
    // dies with this process, whatever ends it
    spawn("sh", ["-c", `read _ ; kill -9 ${child.pid} 2>/dev/null`], {
      stdio: ["pipe", "ignore", "ignore"],
    }).unref();
  }
  return new Promise((resolve, reject) => {
    let log = "";
    const timer = setTimeout(() => reject(new Error(`stan-server not ready:\n${log}`)), 20_000);
    child.stderr?.setEncoding("utf8");
    const onData = (s: string) => {
      log += s;
      if (log.includes('"listening"')) {
        clearTimeout(timer);
        child.stderr?.off("data", onData);
        child.stderr?.resume();
        resolve(child);
      }
    };
    child.stderr?.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`stan-server exited ${code}: ${log}`));
    });
  });
}

/** SIGKILLs a child this test started and waits for its exit. */
export async function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGKILL");
  await done;
}
