import { skipWithoutServerControl } from "@stan-ts/testing";
import { connect as natsConnect } from "nats";
import { describe, expect, it } from "vitest";
import {
  connect,
  type NatsConnectionLike,
  type StanConnection,
  type Status,
} from "../src/index.js";
import { channel, client, iter, publishN, startServer, take, uniqueId } from "./helpers.js";

/** Resolves when the connection reports a status of the given type. */
function when(sc: StanConnection, type: Status["type"]): Promise<Status> {
  return (async () => {
    for await (const s of sc.status()) if (s.type === type) return s;
    throw new Error(`connection ended before "${type}"`);
  })();
}

const fastHeal = {
  pingInterval: 200,
  pingMaxOut: 2,
  reconnect: { initialDelay: 50, maxDelay: 250 },
} as const;

describe("self-healing session", () => {
  it("file store: server down longer than the pings allow, then back; nothing acked is lost, nothing skipped", async (ctx) => {
    skipWithoutServerControl(ctx); // stops and restarts the server
    await using server = await startServer({ store: "file" });
    await using sc = await client(server, fastHeal);
    const ch = channel();
    const sub = await sc.subscribe(ch, { startAt: "first" });
    const it = iter(sub);
    await publishN(sc, ch, 5, "before");
    expect((await take(it, 5)).map((m) => m.sequence)).toEqual([1n, 2n, 3n, 4n, 5n]);

    const disconnected = when(sc, "disconnected");
    await server.stop();
    await disconnected;
    const reconnected = when(sc, "reconnected");
    const during = sc.publish(ch, "during-outage"); // waits in the window, sent once healed
    await server.restart();
    await reconnected;
    expect(await during).toMatch(/^[0-9A-Za-z]{22}$/);
    await publishN(sc, ch, 2, "after");
    const rest = await take(it, 3);
    expect(rest.map((m) => m.string())).toEqual(["during-outage", "after-1", "after-2"]);
    expect(rest.map((m) => m.sequence)).toEqual([6n, 7n, 8n]);
    expect(sc.isOpen).toBe(true);
    expect(sub.isClosed).toBe(false);
  });

  it("file store: a durable resumes at its stored position after the heal, unacked ones redelivered", async (ctx) => {
    skipWithoutServerControl(ctx); // stops and restarts the server
    await using server = await startServer({ store: "file" });
    await using sc = await client(server, fastHeal);
    const ch = channel();
    await publishN(sc, ch, 3);
    const sub = await sc.subscribe(ch, {
      durableName: "healer",
      startAt: "first",
      manualAcks: true,
      ackWait: 30_000,
    });
    const it = iter(sub);
    const [m1, m2] = await take(it, 3);
    m1!.ack();
    m2!.ack(); // #3 stays unacked
    await sc.publish(ch, "sync"); // a PubAck after the acks proves the server applied them
    await take(it, 1);
    const disconnected = when(sc, "disconnected");
    await server.stop();
    await disconnected;
    const resubscribed = when(sc, "resubscribed");
    await server.restart();
    await resubscribed;
    const again = await take(it, 2);
    expect(again.map((m) => m.sequence)).toEqual([3n, 4n]);
    expect(again.every((m) => m.redelivered)).toBe(true);
  });

  it("memory store restart: the session heals and the subscription continues on the new numbering", async (ctx) => {
    skipWithoutServerControl(ctx); // restarts the server
    await using server = await startServer(); // memory: the restart forgets channels and clients
    await using sc = await client(server, fastHeal);
    const ch = channel();
    const sub = await sc.subscribe(ch, { startAt: "first" });
    const it = iter(sub);
    await publishN(sc, ch, 3, "old");
    await take(it, 3); // last sequence seen: 3
    const resubscribed = when(sc, "resubscribed");
    await server.restart();
    await resubscribed;
    // The client asks to resume after sequence 3; the new, empty channel treats that as
    // "new only", so everything published from now on arrives, numbered from 1 again.
    // Messages another client published on the new server *before* this resubscription are
    // not delivered: that gap is inherent to a memory store (README, Reliability).
    await publishN(sc, ch, 3, "new");
    const got = await take(it, 3);
    expect(got.map((m) => [m.sequence, m.string()])).toEqual([
      [1n, "new-1"],
      [2n, "new-2"],
      [3n, "new-3"],
    ]);
  });

  it("waitForClientId: a restarted process gets in as soon as the old registration is evicted", async () => {
    await using server = await startServer();
    const raw = await natsConnect({ servers: server.url });
    let onProbe: (() => void) | undefined;
    // The old process's NATS connection, instrumented to see the server's duplicate probe
    // (an empty request on its heartbeat inbox).
    const spy: NatsConnectionLike = {
      get info() {
        return raw.info;
      },
      publish: (subject, payload, opts) => raw.publish(subject, payload, opts),
      request: (subject, payload, opts) =>
        raw.request(subject, payload, { timeout: opts?.timeout ?? 2000 }),
      flush: () => raw.flush(),
      closed: () => raw.closed(),
      isClosed: () => raw.isClosed(),
      close: () => raw.close(),
      subscribe: (subject, opts) =>
        raw.subscribe(subject, {
          callback: (err, msg) => {
            opts?.callback?.(err, msg);
            if (msg.reply && subject.startsWith("_INBOX.")) onProbe?.();
          },
        }),
    };
    const old = await connect({
      clusterId: server.clusterId,
      clientId: uniqueId(),
      nc: spy,
      reconnect: false,
    });
    const clientId = old.clientId;
    // The old process still answers: the ID is taken.
    await expect(client(server, { clientId })).rejects.toThrow("stan: clientID already registered");
    // The new process waits; when the server probes the old one, the old one dies.
    const probed = new Promise<void>((r) => {
      onProbe = r;
    });
    const joining = client(server, { clientId, waitForClientId: 10_000 });
    await probed;
    await raw.close();
    await using again = await joining;
    expect(again.isOpen).toBe(true);
    expect(again.clientId).toBe(clientId);
  });
});
