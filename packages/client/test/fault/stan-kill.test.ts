import { skipWithoutServerControl } from "@stan-ts/testing";
import { beforeEach, describe, expect, it } from "vitest";
import { channel, client, startServer } from "../helpers.js";
import { faultClient } from "./common.js";
import { consume, Ledger, startPublisher } from "./ledger.js";

describe("fault: streaming server (file store) killed and restarted mid-stream", () => {
  beforeEach(skipWithoutServerControl); // every test here restarts, stops or kills it
  it("a plain and a durable subscriber get every acked message", { timeout: 45_000 }, async () => {
    await using server = await startServer({ store: "file" });
    const plain = new Ledger("stan-kill/plain");
    const durable = new Ledger("stan-kill/durable");
    const ch = channel("sk");
    await using subConn = await client(server, faultClient);
    const s1 = await subConn.subscribe(ch, { ackWait: 1000, maxInflight: 256 });
    const s2 = await subConn.subscribe(ch, { durableName: "dur", ackWait: 1000, maxInflight: 256 });
    const consumers = [consume(s1, plain), consume(s2, durable)];
    await using a = await client(server, faultClient);
    await using b = await client(server, faultClient);
    const pubs = [
      startPublisher(a, ch, "a", [plain, durable]),
      startPublisher(b, ch, "b", [plain, durable]),
    ];
    await plain.waitFor(() => plain.acked >= 500, "traffic before the fault");

    await server.kill(); // no flush of buffered subscription writes: acks may be forgotten
    await server.restart();
    const before = plain.acked;
    await plain.waitFor(() => plain.acked >= before + 500, "acks after the restart", 20_000);

    await Promise.all(pubs.map((p) => p.stop()));
    await Promise.all([plain.allDelivered(), durable.allDelivered()]);
    plain.print();
    durable.print();
    // Messages are fsync'd before their PubAck, so every acked one survives the kill; a
    // message whose PubAck died with the server is re-sent (same guid) or times out. Acks not
    // yet flushed are lost, so some messages come again: at-least-once, counted as duplicates.
    for (const l of [plain, durable]) {
      expect(l.lostIds()).toEqual([]);
      expect(l.storeOrderViolations()).toBe(0);
      expect(l.acked + l.failed).toBe(l.sent);
    }
    await Promise.all([s1.close(), s2.close()]);
    await Promise.all(consumers);
  });
});
