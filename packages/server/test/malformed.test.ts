import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CloseResponseSchema,
  ConnectRequestSchema,
  ConnectResponseSchema,
  decode,
  encode,
  PubAckSchema,
  PubMsgSchema,
  SubscriptionResponseSchema,
} from "@stan-ts/proto";
import { startNatsServer } from "@stan-ts/testing";
import { connect, createInbox } from "nats";
import { describe, expect, it } from "vitest";
import { startServer } from "../src/index.js";
import { crashServer } from "../src/internal.js";
import type { LogFields, Logger } from "../src/logger.js";

const garbage = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
/** A ConnectRequest cut inside its first string field. */
const truncated = encode(ConnectRequestSchema, {
  clientID: "some-client",
  heartbeatInbox: "_INBOX.x",
}).subarray(0, 5);

describe("malformed protocol messages", () => {
  it("are counted and logged, answered with the protocol's error or dropped, and the server keeps serving", async () => {
    await using nats = await startNatsServer();
    const warnings: string[] = [];
    const logger: Logger = {
      trace() {},
      debug() {},
      info() {},
      warn: (msg: string, fields?: LogFields) => {
        warnings.push(`${msg} ${String(fields?.what)}`);
      },
      error() {},
    };
    await using server = await startServer({ natsUrl: nats.url, logger });
    const nc = await connect({ servers: nats.url });
    const cid = server.clusterId;
    const req = (subject: string, data: Uint8Array) => nc.request(subject, data, { timeout: 2000 });
    let expected = 0;
    for (const bad of [garbage, truncated]) {
      const cr = decode(ConnectResponseSchema, (await req(`_STAN.discover.${cid}`, bad)).data);
      expect(cr.error).toBe("stan: invalid connection request");
      const pa = decode(PubAckSchema, (await req(`_STAN.pub.${cid}.foo`, bad)).data);
      expect(pa.error).toBe("stan: invalid publish request");
      const sr = decode(SubscriptionResponseSchema, (await req(`_STAN.sub.${cid}`, bad)).data);
      expect(sr.error).toBe("stan: invalid subscription request");
      for (const s of [`_STAN.unsub.${cid}`, `_STAN.subclose.${cid}`]) {
        const ur = decode(SubscriptionResponseSchema, (await req(s, bad)).data);
        expect(ur.error).toBe("stan: invalid unsubscribe request");
      }
      const cl = decode(CloseResponseSchema, (await req(`_STAN.close.${cid}`, bad)).data);
      expect(cl.error).toBe("stan: invalid close request");
      // pings: no reply at all (as the Go server), only counted
      nc.publish(`_STAN.discover.${cid}.pings`, bad);
      expected += 7;
    }
    await nc.flush();
    await nc.request(`_STAN.discover.${cid}`, garbage, { timeout: 2000 }); // a barrier: the pings were handled
    expected += 1;
    expect(server.protocolErrors).toBe(expected);
    expect(warnings.filter((w) => w.startsWith("malformed message"))).toHaveLength(expected);
    expect(new Set(warnings.map((w) => w.split(" ").pop()))).toEqual(
      new Set([
        "ConnectRequest",
        "PubMsg",
        "SubscriptionRequest",
        "UnsubscribeRequest",
        "CloseRequest",
        "Ping",
      ]),
    );
    // still serving
    const ok = decode(
      ConnectResponseSchema,
      (
        await req(
          `_STAN.discover.${cid}`,
          encode(ConnectRequestSchema, { clientID: "after", heartbeatInbox: createInbox() }),
        )
      ).data,
    );
    expect(ok.error).toBe("");
    expect(ok.pubPrefix).toBe(`_STAN.pub.${cid}`);
    await nc.close();
  });
});

describe("stopping under load", () => {
  for (const how of ["close", "crash"] as const) {
    it(`${how}: publishes arriving while the file store closes never write to it`, async () => {
      await using nats = await startNatsServer();
      const dir = mkdtempSync(join(tmpdir(), "stan-ts-stop-"));
      const uncaught: unknown[] = [];
      const onUncaught = (err: unknown) => uncaught.push(err);
      process.on("uncaughtException", onUncaught);
      try {
        const server = await startServer({
          natsUrl: nats.url,
          store: "file",
          dir,
          logLevel: "silent",
        });
        const nc = await connect({ servers: nats.url });
        const cr = decode(
          ConnectResponseSchema,
          (
            await nc.request(
              `_STAN.discover.${server.clusterId}`,
              encode(ConnectRequestSchema, { clientID: "flood", heartbeatInbox: createInbox() }),
              { timeout: 2000 },
            )
          ).data,
        );
        const acks = createInbox();
        let acked = 0;
        let stopping: Promise<void> | undefined;
        nc.subscribe(acks, {
          callback: () => {
            // the server is stopped while publishes keep arriving
            if (++acked === 200) stopping = how === "close" ? server.close() : crashServer(server);
          },
        });
        const data = new Uint8Array(64);
        for (let i = 0; i < 20_000; i++) {
          nc.publish(
            `${cr.pubPrefix}.load`,
            encode(PubMsgSchema, { clientID: "flood", guid: `g${i}`, subject: "load", data }),
            { reply: acks },
          );
          if (i % 500 === 0) await nc.flush();
        }
        await nc.flush();
        await stopping;
        await nc.close();
        await server.close();
        // one more turn for anything scheduled by the last arrivals
        await new Promise((r) => setImmediate(r));
        expect(uncaught).toEqual([]);
      } finally {
        process.off("uncaughtException", onUncaught);
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
