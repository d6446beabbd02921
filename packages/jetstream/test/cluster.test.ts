// A 3-node JetStream cluster (Debian's nats-server, routes on loopback, a file store each):
// the stream leader is killed (SIGKILL) while two publishers publish and a durable consumes,
// then started again. Every acknowledged publish must be delivered: lost = 0, printed with the
// fault accounting of the client's fault tests (packages/client/test/fault/ledger.ts).
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type NatsServer, startNatsServer } from "@stan-ts/testing";
import { connect as natsConnect } from "nats";
import { connect, type StanConnection } from "stan-ts";
import { expect, it } from "vitest";
import { consume, Ledger, startPublisher } from "../../client/test/fault/ledger.js";
import { channel, uniqueId } from "../../client/test/helpers.js";
import { jetstream, streamName } from "../src/index.js";
import { jetStreamOnly } from "./backends.js";

/** A free loopback port (for the cluster routes, which must be known before any node starts). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface Cluster extends AsyncDisposable {
  readonly nodes: NatsServer[];
  readonly names: string[];
  readonly urls: string[];
}

async function startCluster(size = 3): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), "stan-ts-jsc-"));
  const routes = await Promise.all(Array.from({ length: size }, freePort));
  const names = routes.map((_, i) => `n${i + 1}`);
  const routeList = routes.map((p) => `nats://127.0.0.1:${p}`).join(", ");
  const nodes: NatsServer[] = [];
  try {
    // Each node waits for its routes by itself; start them together so none waits alone.
    nodes.push(
      ...(await Promise.all(
        names.map((name, i) =>
          startNatsServer({
            config: [
              `server_name: ${name}`,
              `jetstream { store_dir: "${join(dir, name)}" }`,
              `cluster { name: stants, listen: "127.0.0.1:${routes[i]}", routes: [${routeList}] }`,
            ].join("\n"),
            readyTimeout: 20_000,
          }),
        ),
      )),
    );
  } catch (err) {
    await Promise.all(nodes.map((n) => n.stop()));
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    nodes,
    names,
    urls: nodes.map((n) => n.url),
    async [Symbol.asyncDispose]() {
      await Promise.all(nodes.map((n) => n.stop()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves once the cluster has a JetStream meta leader and takes a replicated stream. */
async function jetStreamReady(urls: string[], timeoutMs = 30_000): Promise<void> {
  const nc = await natsConnect({ servers: urls });
  const deadline = Date.now() + timeoutMs;
  try {
    const jsm = await nc.jetstreamManager({ timeout: 2000 }).catch(() => undefined);
    for (;;) {
      try {
        const m = await (jsm ?? (await nc.jetstreamManager())).streams.add({
          name: "READY",
          subjects: ["ready.probe"],
          num_replicas: 3,
        });
        if (m.cluster?.leader) return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
      }
      // No event announces the meta leader's election: ask again shortly.
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    await nc.close();
  }
}

jetStreamOnly("fault: JetStream cluster of 3, the stream leader killed mid-stream", () => {
  it("every acked message is delivered to the durable (lost = 0)", {
    timeout: 120_000,
  }, async () => {
    await using cluster = await startCluster();
    await jetStreamReady(cluster.urls);
    const backend = jetstream({ replicas: 3 });
    const opts = {
      clusterId: "c",
      servers: cluster.urls,
      backend,
      pubAckTimeout: 30_000,
      maxPubAcksInflight: 128,
      natsOptions: { reconnectTimeWait: 50 },
    };
    const ledger = new Ledger("jetstream-cluster/durable");
    const ch = channel("jsc");
    const conns: StanConnection[] = [];
    try {
      const subConn = await connect({ ...opts, clientId: uniqueId("sub") });
      conns.push(subConn);
      const sub = await subConn.subscribe(ch, {
        durableName: "dur",
        startAt: "first",
        ackWait: 2000,
        maxInflight: 256,
      });
      const consumer = consume(sub, ledger);
      const a = await connect({ ...opts, clientId: uniqueId("a") });
      const b = await connect({ ...opts, clientId: uniqueId("b") });
      conns.push(a, b);
      const pubs = [startPublisher(a, ch, "a", [ledger]), startPublisher(b, ch, "b", [ledger])];
      await ledger.waitFor(() => ledger.acked >= 500, "traffic before the fault", 30_000);

      const nc = await natsConnect({ servers: cluster.urls });
      const leader = (await (await nc.jetstreamManager()).streams.info(streamName(ch))).cluster
        ?.leader;
      await nc.close();
      const victim = cluster.nodes[cluster.names.indexOf(leader ?? "n1")] as NatsServer;
      await victim.kill();
      const before = ledger.acked;
      await ledger.waitFor(() => ledger.acked >= before + 500, "acks after the kill", 60_000);
      await victim.restart();
      const after = ledger.acked;
      await ledger.waitFor(() => ledger.acked >= after + 200, "acks after the restart", 60_000);

      await Promise.all(pubs.map((p) => p.stop()));
      await ledger.allDelivered(60_000);
      ledger.print(`killed ${leader}`);
      expect(ledger.lostIds()).toEqual([]);
      expect(ledger.acked + ledger.failed).toBe(ledger.sent);
      // Not asserted: store order. A pipelined publish in flight to the dead leader is re-sent
      // (same Nats-Msg-Id) after its timeout, by when newer ones may already be stored by the
      // new leader; the README lists this difference from STAN's in-order re-send.
      await sub.close();
      await consumer;
    } finally {
      await Promise.all(conns.map((c) => c.close().catch(() => {})));
    }
  });
});
