// Traffic for the failover scenarios (cluster.test.ts, ft.test.ts): two pipelined publishers,
// a durable subscriber and a durable queue group of two members (asserted), a plain subscriber
// (counted only), every client given the NATS URLs of all nodes, and a clock for the time to
// recover from a fault.
import { performance } from "node:perf_hooks";
import type { StanNode } from "@stan-ts/testing";
import { expect } from "vitest";
import { connect, type StanConnection, type Subscription } from "../../src/index.js";
import { channel, uniqueId } from "../helpers.js";
import { faultClient } from "./common.js";
import { consume, Ledger, type Publisher, startPublisher, withTimeout } from "./ledger.js";

/** Waiters for the first ack of a publish made after a point in time. */
class RecoveryClock {
  private readonly waiters = new Set<{
    after: number;
    publisher: string | undefined;
    resolve: (at: number) => void;
  }>();

  /**
   * `sc` whose publishAsync reports each ack, with the time its publish was made, to the clock,
   * as publisher `name`'s.
   */
  wrap(sc: StanConnection, name: string): StanConnection {
    const onAck = (sentAt: number) => {
      const now = performance.now();
      for (const w of [...this.waiters]) {
        if (sentAt >= w.after && (w.publisher === undefined || w.publisher === name)) {
          this.waiters.delete(w);
          w.resolve(now);
        }
      }
    };
    return new Proxy(sc, {
      get(target, prop) {
        if (prop === "publishAsync") {
          const publishAsync: StanConnection["publishAsync"] = async (subject, data, opts) => {
            const sentAt = performance.now();
            const sent = await target.publishAsync(subject, data, opts);
            sent.acked.then(
              () => onAck(sentAt),
              () => {},
            );
            return sent;
          };
          return publishAsync;
        }
        const v: unknown = Reflect.get(target, prop, target);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
  }

  /**
   * Resolves with the time of the first ack of a publish made at or after `after` (by
   * `publisher`, or by any).
   */
  firstAckOfPublishAfter(after: number, publisher?: string): Promise<number> {
    return new Promise((resolve) => this.waiters.add({ after, publisher, resolve }));
  }
}

/** The running traffic of one failover scenario. */
export interface FailoverTraffic {
  /** A non-durable subscriber on the durable's connection: printed, its guarantees are weaker. */
  readonly plain: Ledger;
  readonly durable: Ledger;
  readonly queue: Ledger;
  /** Session heals (`reconnected` status events) over all connections. */
  readonly heals: () => number;
  /** Waits until the publishers got `n` more acks than now. */
  moreAcks(n: number, timeoutMs?: number): Promise<void>;
  /**
   * Runs `fault` (a kill) and resolves with the milliseconds from its start to the first ack
   * of a publish made after it started: only a server that took over can have acked that.
   */
  recoverFrom(
    fault: () => Promise<void> | void,
    options?: { timeoutMs?: number; publisher?: string },
  ): Promise<number>;
  /** Stops publishing, waits until every acked message was delivered, prints the ledgers. */
  finish(extra: string): Promise<void>;
  /** Closes every connection. */
  close(): Promise<void>;
}

/**
 * The first NATS server of each connection, in the order they are opened: the durable
 * subscriber, queue members 1 and 2, publishers `a` and `b`. Each then falls back to the
 * others in the order given.
 */
export type Placement = readonly [string, string, string, string, string];

/**
 * Starts the traffic of a failover scenario against the streaming server `clusterId` served
 * through any of `urls`: publishers `a` and `b`, durable `dur`, durable queue group `workers`.
 * Without `placement`, each connection picks its NATS server at random.
 */
export async function startFailoverTraffic(
  name: string,
  clusterId: string,
  urls: readonly string[],
  placement?: Placement,
): Promise<FailoverTraffic> {
  const conns: StanConnection[] = [];
  let heals = 0;
  const open = async (): Promise<StanConnection> => {
    const first = placement?.[conns.length];
    const sc = await connect({
      ...faultClient,
      clusterId,
      clientId: uniqueId(name),
      servers: first ? [first, ...urls.filter((u) => u !== first)] : [...urls],
      natsOptions: { ...faultClient.natsOptions, noRandomize: first !== undefined },
    });
    conns.push(sc);
    void (async () => {
      for await (const s of sc.status()) if (s.type === "reconnected") heals++;
    })();
    return sc;
  };
  const ch = channel(name);
  const durable = new Ledger(`${name}/durable`);
  const queue = new Ledger(`${name}/durable-queue`, false); // members run concurrently
  const subs: Subscription[] = [];
  const consumers: Array<Promise<void>> = [];
  const subConn = await open();
  subs.push(await subConn.subscribe(ch, { durableName: "dur", ackWait: 1000, maxInflight: 256 }));
  consumers.push(consume(subs[0]!, durable));
  const plain = new Ledger(`${name}/plain`);
  subs.push(await subConn.subscribe(ch, { ackWait: 1000, maxInflight: 256 }));
  consumers.push(consume(subs[1]!, plain));
  for (let i = 0; i < 2; i++) {
    const member = await open();
    const sub = await member.subscribe(ch, {
      queue: "workers",
      durableName: "qdur",
      ackWait: 1000,
      maxInflight: 128,
    });
    subs.push(sub);
    consumers.push(consume(sub, queue));
  }
  const clock = new RecoveryClock();
  const pubs: Publisher[] = [];
  for (const p of ["a", "b"]) {
    pubs.push(startPublisher(clock.wrap(await open(), p), ch, p, [durable, queue, plain]));
  }
  return {
    plain,
    durable,
    queue,
    heals: () => heals,
    moreAcks: (n, timeoutMs = 20_000) => {
      const target = durable.acked + n;
      return durable.waitFor(() => durable.acked >= target, `${n} more acks`, timeoutMs);
    },
    recoverFrom: async (fault, { timeoutMs = 20_000, publisher } = {}) => {
      const start = performance.now();
      const recovered = clock.firstAckOfPublishAfter(start, publisher);
      await fault();
      const at = await withTimeout(recovered, timeoutMs, "the first ack after the fault");
      return Math.round(at - start);
    },
    finish: async (extra) => {
      await Promise.all(pubs.map((p) => p.stop()));
      await Promise.all([durable.allDelivered(20_000), queue.allDelivered(20_000)]);
      await plain.allDelivered(3000).catch(() => {}); // may have lost some: printed, not asserted
      plain.print(extra);
      durable.print(extra);
      queue.print(extra);
    },
    close: async () => {
      await Promise.all(subs.map((s) => s.close().catch(() => {})));
      await Promise.all(conns.map((c) => c.close().catch(() => {})));
      await Promise.all(consumers);
    },
  };
}

/**
 * The kill scenario: with traffic flowing, kill -9 the node `head()` names (the leader, the
 * active), wait for another to take over, start the killed one again, kill the node that
 * leads then (normally the same one), wait for the next one; 300 more acks after every step.
 * Resolves with the two times to recover and the heads: the first, the second one killed, and
 * the last.
 */
export async function killRestartKill(
  traffic: FailoverTraffic,
  head: () => Promise<StanNode>,
): Promise<{ recover: [number, number]; heads: [StanNode, StanNode, StanNode] }> {
  await traffic.moreAcks(300);
  const first = await head();
  const recover1 = await traffic.recoverFrom(() => first.kill());
  expect((await head()).id).not.toBe(first.id);
  await traffic.moreAcks(300);

  await first.start(); // rejoins: a follower catching up, or the standby
  const second = await head();
  await traffic.moreAcks(300);

  const recover2 = await traffic.recoverFrom(() => second.kill());
  const third = await head();
  expect(third.id).not.toBe(second.id);
  await traffic.moreAcks(300);
  return { recover: [recover1, recover2], heads: [first, second, third] };
}

/** Every acked message was delivered to the durable and the queue group; every publish settled. */
export function expectNothingLost(traffic: FailoverTraffic): void {
  for (const l of [traffic.durable, traffic.queue]) {
    expect(l.lostIds()).toEqual([]);
    expect(l.acked + l.failed).toBe(l.sent);
  }
}
