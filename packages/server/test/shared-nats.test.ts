/**
 * Issue 14 point 4: `startServer({ natsServer })` runs streaming servers on one shared
 * nats-server, which a test suite starts once per worker (saving a nats-server start per
 * test file; bench/README.md "Start-up" has the figures).
 */
import { describe, expect, it } from "vitest";
import { spawnNatsServer } from "../src/nats-process.js";
import { startServer } from "../src/server.js";
import { freePort } from "./bin-lifecycle.js";
import { probeConnect, probeHttp } from "./probe.js";

describe("startServer({ natsServer }): one nats-server, many streaming servers", () => {
  it("serves side by side and one after another; close() leaves the shared nats-server running", async () => {
    await using nats = await spawnNatsServer();
    const a = await startServer({ natsServer: nats, clusterId: "suite-a", logLevel: "silent" });
    const b = await startServer({
      natsServer: Promise.resolve(nats),
      clusterId: "suite-b",
      logLevel: "silent",
    });
    expect(a.url).toBe(nats.url);
    expect(b.url).toBe(nats.url);
    for (const cid of ["suite-a", "suite-b"]) {
      const r = await probeConnect(nats.port, performance.now(), { clusterId: cid, once: true });
      expect(r.error).toBe("");
    }
    await a.close();
    expect(nats.running).toBe(true);
    // the next test file, same cluster ID, same nats-server
    const again = await startServer({ natsServer: nats, clusterId: "suite-a", logLevel: "silent" });
    const r = await probeConnect(nats.port, performance.now(), {
      clusterId: "suite-a",
      once: true,
    });
    expect(r.error).toBe("");
    await again.close();
    await b.close();
    expect(nats.running).toBe(true);
  });

  it("a held-back monitoring port opens when the first streaming server on it is ready", async () => {
    const monitor = await freePort();
    await using nats = await spawnNatsServer({ args: ["-m", String(monitor)], holdMonitor: true });
    // nats-server runs and monitors on a private port; the one asked for is still closed
    await expect(
      probeHttp(monitor, "/varz", performance.now(), 200).then(() => "open"),
    ).rejects.toThrow(/not open/);
    await using server = await startServer({ natsServer: nats, logLevel: "silent" });
    const varz = await probeHttp(monitor, "/varz", performance.now(), 5_000);
    expect(varz.status).toBe(200);
    expect(server.url).toBe(nats.url);
  });
});
