import { createServer } from "node:net";
import { connect } from "nats";
import { describe, expect, it } from "vitest";
import { parseArgs } from "../src/cli.js";
import { spawnNatsServer } from "../src/nats-process.js";
import { type ServerOptions, startServer } from "../src/server.js";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe("stan-server passes nats-server flags through", () => {
  it("collects the official binary's nats-server flags, refuses them with -ns", () => {
    // The official binary's nats-server flags, in order; -p is stan-server's own.
    const natsFlags = [
      "--cluster",
      "nats://127.0.0.1:6222",
      "--routes=nats://127.0.0.1:6223",
      "--cluster_name",
      "c1",
      "--user",
      "u",
      "--pass",
      "p",
      "-m",
      "8222",
      "--tls",
      "--tlsverify=false",
      "-c",
      "/tmp/x.conf",
    ];
    const o = parseArgs([...natsFlags, "-p", "4333"]) as ServerOptions;
    expect(o.natsPort).toBe(4333);
    expect(o.natsArgs).toEqual(natsFlags);
    expect(() => parseArgs(["-ns", "nats://127.0.0.1:4222", "--routes", "nats://x:1"])).toThrow(
      /--routes: nats-server option\(s\) cannot be used with -ns/,
    );
    // -p with -ns: accepted and ignored, as nats-streaming-server 0.25.6 does.
    const withNs = parseArgs(["-ns", "nats://127.0.0.1:4222", "-p", "4333"]) as ServerOptions;
    expect(withNs.natsUrl).toBe("nats://127.0.0.1:4222");
  });

  it("--cluster/--routes form a NATS cluster with a plain nats-server", async () => {
    const [routeA, routeB] = [await freePort(), await freePort()];
    await using peer = await spawnNatsServer({
      args: ["--cluster", `nats://127.0.0.1:${routeB}`, "--cluster_name", "t"],
    });
    const opts = parseArgs([
      "--cluster",
      `nats://127.0.0.1:${routeA}`,
      "--routes",
      `nats://127.0.0.1:${routeB}`,
      "--cluster_name",
      "t",
      "-l",
      "silent",
    ]) as ServerOptions;
    const server = await startServer(opts);
    try {
      const a = await connect({ servers: server.natsUrl });
      const b = await connect({ servers: peer.url });
      try {
        // Routes come up asynchronously: publish until the peer's subscriber sees one.
        const sub = b.subscribe("cluster.test", { max: 1 });
        await b.flush();
        const got = (async () => {
          for await (const m of sub) return new TextDecoder().decode(m.data);
          return undefined;
        })();
        let received: string | undefined;
        void got.then((v) => {
          received = v;
        });
        for (let i = 0; received === undefined && i < 500; i++) {
          a.publish("cluster.test", new TextEncoder().encode("across"));
          await a.flush();
          await Promise.race([got, new Promise((r) => setTimeout(r, 20))]);
        }
        expect(await got).toBe("across");
      } finally {
        await a.close();
        await b.close();
      }
    } finally {
      await server.close();
    }
  }, 20_000);
});

describe("stan-server exit status", () => {
  for (const [signal, status] of [
    ["SIGTERM", 143],
    ["SIGINT", 0],
  ] as const) {
    it(`exits ${status} on ${signal}, as nats-streaming-server 0.25.6`, async () => {
      const { spawn } = await import("node:child_process");
      const { fileURLToPath } = await import("node:url");
      const bin = fileURLToPath(new URL("../src/bin.ts", import.meta.url));
      const child = spawn(
        process.execPath,
        ["--import", "tsx", "--conditions=@stan-ts/source", bin],
        { stdio: ["ignore", "ignore", "pipe"] },
      );
      let log = "";
      await new Promise<void>((resolve, reject) => {
        child.stderr.setEncoding("utf8");
        child.stderr.on("data", (c: string) => {
          log += c;
          if (log.includes('"listening"')) resolve();
        });
        child.once("exit", () => reject(new Error(`exited before listening:\n${log}`)));
      });
      const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
      child.kill(signal);
      expect(await exited).toBe(status);
    }, 20_000);
  }
});
