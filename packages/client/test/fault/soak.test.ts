import { seededRandom, skipWithoutServerControl } from "@stan-ts/testing";
import { connect as natsConnect } from "nats";
import { beforeEach, describe, expect, it } from "vitest";
import type { NatsConnectionLike, StanConnection, Subscription } from "../../src/index.js";
import { channel, client, startServer } from "../helpers.js";
import { faultClient } from "./common.js";
import { consume, Ledger, startPublisher, when } from "./ledger.js";

/** 60 s (or SOAK_SECONDS) in `pnpm soak`; a reduced 10 s run in the normal suite. */
const SECONDS = Number(process.env.SOAK_SECONDS ?? (process.env.STAN_SOAK === "1" ? 60 : 10));
const SEED = Number(process.env.SOAK_SEED ?? Math.floor(Math.random() * 2 ** 31));

const FAULTS = ["nats-restart", "stan-kill", "stan-outage", "consumer-kill"] as const;

describe("soak: random faults", () => {
  beforeEach(skipWithoutServerControl); // every test here restarts, stops or kills it
  it(`${SECONDS} s of traffic with random faults loses nothing acked`, {
    timeout: (SECONDS + 120) * 1000,
  }, async () => {
    console.log(`[soak] seed=${SEED} seconds=${SECONDS} (replay: SOAK_SEED=${SEED})`);
    const random = seededRandom(SEED);
    // The server evicts a dead client after 2 failed heartbeats 200 ms apart (consumer-kill).
    await using server = await startServer({
      store: "file",
      hbInterval: 200,
      hbTimeout: 200,
      hbFailCount: 2,
    });
    const durable = new Ledger("soak/durable");
    const group = new Ledger("soak/queue", false);
    // Every connection's heal events: a resubscribe must never fail (a resubscribe that times
    // out because the server went away again heals again), and re-sent publishes bound the
    // store-order violations (see below).
    const healing = { republished: 0, resubscribeFailed: [] as string[] };
    const watch = (sc: StanConnection) => {
      void (async () => {
        for await (const s of sc.status()) {
          if (s.type === "republished") healing.republished += s.count;
          else if (s.type === "resubscribe-failed") {
            healing.resubscribeFailed.push(`${s.subject}: ${s.error.message}`);
          }
        }
      })();
    };
    const ch = channel("soak");
    const subOpts = { ackWait: 1000, maxInflight: 256 } as const;
    await using dConn = await client(server, faultClient);
    watch(dConn);
    const dSub = await dConn.subscribe(ch, { ...subOpts, durableName: "soak" });
    const dDone = consume(dSub, durable);

    // A durable queue group of two members; a killed member is replaced by a new one.
    const members: Array<{
      sc: StanConnection;
      sub: Subscription;
      nc: { close(): Promise<void> };
      done: Promise<void>;
    }> = [];
    const addMember = async () => {
      const nc = await natsConnect({
        servers: server.url,
        reconnectTimeWait: 50,
        maxReconnectAttempts: -1,
      });
      const sc = await client(server, { ...faultClient, nc: nc as unknown as NatsConnectionLike });
      watch(sc);
      const sub = await sc.subscribe(ch, { ...subOpts, queue: "workers", durableName: "soakq" });
      members.push({ sc, sub, nc, done: consume(sub, group) });
    };
    await addMember();
    await addMember();

    const pubConns = [await client(server, faultClient), await client(server, faultClient)];
    for (const sc of pubConns) watch(sc);
    const pubs = pubConns.map((sc, i) => startPublisher(sc, ch, `p${i}`, [durable, group]));
    const counts = new Map<string, number>();
    const started = Date.now();
    try {
      while (Date.now() - started < SECONDS * 1000) {
        const base = durable.acked;
        const gap = 200 + Math.floor(random() * 800);
        await durable.waitFor(() => durable.acked >= base + gap, `${gap} acks of traffic`, 30_000);
        const fault = FAULTS[Math.floor(random() * FAULTS.length)] as (typeof FAULTS)[number];
        counts.set(fault, (counts.get(fault) ?? 0) + 1);
        if (fault === "nats-restart") {
          await server.restartNats();
        } else if (fault === "stan-kill") {
          await server.kill();
          await server.restart();
        } else if (fault === "stan-outage") {
          // A connection still healing from the previous fault (the traffic wait can be met by
          // the other publisher alone) reports no new "disconnected": watch one that is open.
          // (`isOpen` stays true while a session heals: `isReconnecting` tells them apart.)
          const probe = [...pubConns, dConn].find((sc) => sc.isOpen && !sc.isReconnecting);
          const lost = probe ? when(probe, "disconnected") : undefined;
          await server.stop();
          await lost; // longer than pingInterval x pingMaxOut
          await server.restart();
        } else {
          const victim = members.shift();
          await victim?.nc.close(); // as if its process died: its unacked messages move on
          await victim?.done;
          await addMember();
        }
        const after = durable.acked;
        await durable.waitFor(() => durable.acked >= after + 100, `traffic after ${fault}`, 30_000);
      }
      await Promise.all(pubs.map((p) => p.stop()));
      await Promise.all([durable.allDelivered(30_000), group.allDelivered(30_000)]);
    } finally {
      durable.print(`lost-ids=${durable.lostIds().slice(0, 10).join(",")}`);
      group.print(`lost-ids=${group.lostIds().slice(0, 10).join(",")}`);
    }
    const faults = FAULTS.map((f) => `${f}:${counts.get(f) ?? 0}`).join(",");
    const seconds = Math.round((Date.now() - started) / 1000);
    // Zero loss is what the protocol guarantees here: a durable subscription and a durable
    // queue group on a file store (a non-durable queue group is not covered; RELIABILITY.md).
    expect(durable.lostIds()).toEqual([]);
    expect(group.lostIds()).toEqual([]);
    expect(healing.resubscribeFailed).toEqual([]);
    // Per publisher, messages are stored in publish order, except a publish lost in transit (a
    // crash drops it, or nats-server restarts under it) while later ones got through: the heal
    // re-sends it, so it is stored after them. Each such violation is a re-sent publish.
    // Delivery order can differ too: a delivery lost in transit is redelivered after ackWait,
    // behind newer messages (server-behaviour.md §9); counted and printed, not asserted.
    expect(durable.storeOrderViolations()).toBeLessThanOrEqual(healing.republished);
    for (const m of members) await m.sc.close();
    await dSub.close();
    await Promise.all([dDone, ...members.map((m) => m.done)]);
    for (const sc of pubConns) await sc.close();
    console.log(
      `[soak] seed=${SEED} seconds=${seconds} faults=${faults} sent=${durable.sent} acked=${durable.acked} failed=${durable.failed} ` +
        `delivered=${durable.delivered}/${group.delivered} duplicated=${durable.duplicated}/${group.duplicated} ` +
        `lost=${durable.lostIds().length + group.lostIds().length} store-order-violations=${durable.storeOrderViolations()} republished=${healing.republished} redelivery-order-violations=${durable.orderViolations} (x/y: durable/queue group)`,
    );
  });
});
