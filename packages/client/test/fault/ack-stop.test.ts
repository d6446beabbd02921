import { skipWithoutServerControl } from "@stan-ts/testing";
import { beforeEach, describe, expect, it } from "vitest";
import { ErrorCode, StanTimeoutError } from "../../src/index.js";
import { channel, client, startServer } from "../helpers.js";
import { consume, Ledger } from "./ledger.js";

describe("fault: a publisher whose acks stop arriving", () => {
  beforeEach(skipWithoutServerControl); // every test here restarts, stops or kills it
  it("gets typed ack timeouts, its window is freed, and it works again when acks return", {
    timeout: 30_000,
  }, async () => {
    await using server = await startServer({ store: "file" });
    const ledger = new Ledger("ack-stop");
    const ch = channel("as");
    const WINDOW = 16;
    const TIMEOUT = 400;
    // Healing off and pings far apart: only the ack timeouts speak here.
    await using sc = await client(server, {
      pubAckTimeout: TIMEOUT,
      maxPubAcksInflight: WINDOW,
      pingInterval: 60_000,
      reconnect: false,
    });
    await using subConn = await client(server, { pingInterval: 60_000, reconnect: false });
    const sub = await subConn.subscribe(ch, { ackWait: 1000 });
    const consumer = consume(sub, ledger);
    const burst = async (from: number, n: number) => {
      const acks: Array<Promise<unknown>> = [];
      for (let i = from; i < from + n; i++) {
        const id = `p:${i}`;
        ledger.onSend();
        const { acked } = await sc.publishAsync(ch, id);
        acks.push(
          acked.then(
            () => ledger.onAck(id),
            (e: unknown) => {
              ledger.onFail(e);
              return e;
            },
          ),
        );
      }
      return Promise.all(acks);
    };
    await burst(1, 100);

    await server.stop(); // the streaming server is gone, NATS stays: nothing answers publishes
    const started = Date.now();
    const results = await burst(101, 5 * WINDOW); // five times the window: it must keep freeing
    const elapsed = Date.now() - started;
    const errors = results.filter((r) => r instanceof Error);
    expect(errors).toHaveLength(5 * WINDOW);
    for (const e of errors) {
      expect(e).toBeInstanceOf(StanTimeoutError);
      expect((e as StanTimeoutError).code).toBe(ErrorCode.PubAckTimeout);
      expect((e as StanTimeoutError).message).toBe("stan: publish ack timeout");
    }
    expect(sc.pendingPublishes).toBe(0);
    // five window-fulls time out one after another: about 5 x TIMEOUT, plus sweep granularity
    expect(elapsed).toBeGreaterThanOrEqual(5 * TIMEOUT - 50);
    expect(elapsed).toBeLessThan(5 * TIMEOUT + 2000);

    await server.restart(); // the file store remembers the client: acks come back, no reconnect
    await burst(1000, 100);
    await ledger.allDelivered();
    ledger.print(`outage-burst=${5 * WINDOW} in ${elapsed}ms`);
    expect(ledger.acked).toBe(200);
    expect(ledger.failures.get(ErrorCode.PubAckTimeout)).toBe(5 * WINDOW);
    expect(ledger.lostIds()).toEqual([]);
    expect(sc.isOpen).toBe(true);
    await sub.close();
    await consumer;
  });
});
