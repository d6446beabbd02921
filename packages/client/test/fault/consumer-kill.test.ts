import { connect as natsConnect } from "nats";
import { describe, expect, it } from "vitest";
import type { NatsConnectionLike } from "../../src/index.js";
import { channel, client, startServer } from "../helpers.js";
import { consume, Ledger } from "./ledger.js";

describe("fault: a queue consumer killed mid-processing", () => {
  it("its unacked messages reach the other member of the queue group", {
    timeout: 30_000,
  }, async () => {
    // The server evicts a client whose heartbeats fail: 200 ms interval, 2 failures tolerated
    // (with STAN_URL, the server's own flags: 1 s interval and timeout, 2 failures, as README asks).
    await using server = await startServer({ hbInterval: 200, hbTimeout: 200, hbFailCount: 2 });
    const ledger = new Ledger("consumer-kill");
    const ch = channel("ck");
    const held: string[] = [];
    // The victim: its own NATS connection, closed abruptly below (as when its process dies:
    // no close request, its heartbeat inbox simply disappears).
    const victimNc = await natsConnect({ servers: server.url });
    await using victim = await client(server, {
      nc: victimNc as unknown as NatsConnectionLike,
      reconnect: false,
    });
    const vsub = await victim.subscribe(ch, {
      queue: "workers",
      manualAcks: true, // mid-processing: never acks
      maxInflight: 20,
      ackWait: 30_000, // far away: the handover below is due to the death, not to ackWait
    });
    const vdone = (async () => {
      try {
        for await (const m of vsub) {
          held.push(m.string());
          ledger.onDeliver(m.string());
        }
      } catch {
        // ended by the kill
      }
    })();
    await using pub = await client(server);
    const send = async (n: number) => {
      ledger.onSend();
      await pub.publish(ch, `p:${n}`);
      ledger.onAck(`p:${n}`);
    };
    // the victim alone takes the first 20 and stalls on them (maxInflight 20, no acks)
    for (let n = 1; n <= 20; n++) await send(n);
    await ledger.waitFor(() => held.length === 20, "the victim to hold 20 unacked messages");
    await using survivorConn = await client(server);
    const survivor = await survivorConn.subscribe(ch, { queue: "workers", maxInflight: 1000 });
    const toSurvivor = new Set<string>();
    const sdone = consume(survivor, ledger, (id) => {
      toSurvivor.add(id);
    });
    for (let n = 21; n <= 200; n++) await send(n);

    await victimNc.close(); // killed
    const start = Date.now();
    await ledger.waitFor(
      () => held.every((id) => toSurvivor.has(id)),
      "the victim's messages to reach the survivor",
      10_000,
    );
    const handover = Date.now() - start;
    ledger.print(`held-by-victim=${held.length} handover=${handover}ms`);
    expect(ledger.lostIds()).toEqual([]);
    // each message the victim held came again, to the survivor
    expect(ledger.duplicated).toBe(held.length);
    expect(ledger.delivered).toBe(200);
    await survivor.close();
    await Promise.all([sdone, vdone]);
  });
});
