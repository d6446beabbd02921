import { existsSync } from "node:fs";
import { connect } from "nats";
import { describe, expect, it } from "vitest";
import { parseArgs } from "../src/cli.js";
import { spawnNatsServer } from "../src/nats-process.js";
import { type ServerOptions, startServer } from "../src/server.js";
import { freePort, startBin } from "./bin-lifecycle.js";

/**
 * Publishes on `fromUrl` until a subscriber on `toUrl` receives it (routes and their
 * subscription interest come up asynchronously) and returns what it received.
 */
async function acrossRoute(fromUrl: string, toUrl: string, text: string): Promise<string> {
  const a = await connect({ servers: fromUrl });
  const b = await connect({ servers: toUrl });
  try {
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
      a.publish("cluster.test", new TextEncoder().encode(text));
      await a.flush();
      await Promise.race([got, new Promise((r) => setTimeout(r, 20))]);
    }
    return (await got) ?? "";
  } finally {
    await a.close();
    await b.close();
  }
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
      expect(await acrossRoute(server.natsUrl, peer.url, "across")).toBe("across");
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

/**
 * The flags a binary's help lists, as `name -> takes a value`: lines like
 * `    -a, --addr, --net <host>   ...` or `        --tls=<bool>   ...`.
 */
function helpFlags(help: string): Map<string, boolean> {
  const flags = new Map<string, boolean>();
  for (const line of help.split("\n")) {
    const m = /^\s+((?:-{1,2}[A-Za-z_]+(?:=<bool>)?[, ]*)+)(<[^>]+>(?:, \.\.\.)?)?/.exec(line);
    if (!m) continue;
    for (const f of m[1]!.matchAll(/-{1,2}([A-Za-z_]+)(=<bool>)?/g)) {
      // `<bool>` is Go's bool flag: `--x` or `--x=false`, no separate value
      flags.set(f[1]!, m[2] !== undefined && m[2] !== "<bool>" && f[2] === undefined);
    }
  }
  return flags;
}

/** What stan-server makes of `-name [value]`: "ok" (taken), or the error text. */
function verdict(name: string, takesValue: boolean): string {
  const value = name === "store" || name === "st" ? "memory" : "1";
  try {
    parseArgs(takesValue ? [`-${name}`, value] : [`-${name}`]);
    return "ok";
  } catch (err) {
    return (err as Error).message;
  }
}

describe("stan-server's flags against the official help texts", () => {
  const NATS = process.env.NATS_SERVER_BIN ?? "nats-server";
  const STREAMING =
    process.env.NATS_STREAMING_SERVER ?? "/opt/stan-tools/bin/nats-streaming-server";

  /** The flags `bin helpArg` lists that stan-server does not know at all. */
  const unknownFlags = async (bin: string, helpArg: string, atLeast: number) => {
    const { spawnSync } = await import("node:child_process");
    const help = spawnSync(bin, [helpArg], { encoding: "utf8" });
    const flags = helpFlags(`${help.stdout}${help.stderr}`);
    expect(flags.size).toBeGreaterThan(atLeast);
    return [...flags]
      .filter(([name]) => !["h", "help", "v", "version"].includes(name))
      .filter(([name, v]) => /unknown flag/.test(verdict(name, v)))
      .map(([name]) => name);
  };

  it("takes, or refuses with a reason, every flag of `nats-server --help`", async () => {
    // the 2.9.10 help lists about 60 names
    expect(await unknownFlags(NATS, "--help", 50)).toEqual([]);
  });

  it.skipIf(!existsSync(STREAMING))(
    "takes, or refuses with a reason, every flag of `nats-streaming-server -h`",
    async () => {
      expect(await unknownFlags(STREAMING, "-h", 90)).toEqual([]);
    },
  );

  it("refuses what it does not do with the reason; accepts an explicit =false of it", () => {
    expect(() => parseArgs(["--clustered"])).toThrow(/--clustered" is not supported: clustered/);
    expect(() => parseArgs(["-sl", "stop"])).toThrow(/kill -TERM/);
    expect(() => parseArgs(["--syslog"])).toThrow(/syslog/);
    expect(parseArgs(["--clustered=false", "--encrypt=false"])).toEqual({ logLevel: "info" });
    expect(parseArgs(["-l", "/tmp/stan.log"])).toMatchObject({ logFile: "/tmp/stan.log" });
    expect(parseArgs(["-l", "debug"])).toMatchObject({ logLevel: "debug" });
    expect(parseArgs(["--file_sync", "-p", "4333"])).toMatchObject({
      fileSync: true,
      natsPort: 4333,
    });
    expect(parseArgs(["--file_sync=false"])).toMatchObject({ fileSync: false });
    expect(parseArgs(["-DVV"])).toMatchObject({ logLevel: "trace" });
  });

  it("--user/--pass: nats-server requires them and the engine connects with them", async () => {
    const opts = parseArgs(["--user", "u1", "--pass", "s3cret", "-l", "silent"]) as ServerOptions;
    await using server = await startServer(opts);
    await expect(connect({ servers: server.natsUrl })).rejects.toThrow(/Authorization/i);
    const nc = await connect({ servers: server.natsUrl, user: "u1", pass: "s3cret" });
    try {
      // the engine, connected with the credentials, answers a ConnectRequest
      const { ConnectRequestSchema, ConnectResponseSchema, decode, encode } = await import(
        "@stan-ts/proto"
      );
      const reply = await nc.request(
        `_STAN.discover.${server.clusterId}`,
        encode(ConnectRequestSchema, {
          clientID: "auth-probe",
          heartbeatInbox: "_INBOX.auth.hb",
          protocol: 1,
          connID: new TextEncoder().encode("auth-probe"),
          pingInterval: 5,
          pingMaxOut: 3,
        }),
        { timeout: 5000 },
      );
      expect(decode(ConnectResponseSchema, reply.data).error).toBe("");
    } finally {
      await nc.close();
    }
  });
});

describe("stan-server processes form a NATS cluster (--cluster, --routes)", () => {
  it("two stan-server processes route to each other: /routez counts the route, a message crosses it", async () => {
    const [clusterA, clusterB, monA] = [await freePort(), await freePort(), await freePort()];
    const common = ["--cluster_name", "c14", "-l", "info"];
    const a = startBin([
      "-cid",
      "cluster-a",
      "--cluster",
      `nats://127.0.0.1:${clusterA}`,
      "--routes",
      `nats://127.0.0.1:${clusterB}`,
      "-m",
      String(monA),
      ...common,
    ]);
    const b = startBin([
      "-cid",
      "cluster-b",
      "--cluster",
      `nats://127.0.0.1:${clusterB}`,
      "--routes",
      `nats://127.0.0.1:${clusterA}`,
      ...common,
    ]);
    try {
      const url = async (bin: typeof a) =>
        /"url":"([^"]+)"/.exec(await bin.line('"listening"'))![1]!;
      const [urlA, urlB] = [await url(a), await url(b)];
      // the route: nats-server A reports it on its monitoring endpoint (forwarded by stan-server)
      let routes = 0;
      for (let i = 0; i < 200 && routes === 0; i++) {
        const res = await fetch(`http://127.0.0.1:${monA}/routez`);
        routes = ((await res.json()) as { num_routes: number }).num_routes;
        if (routes === 0) await new Promise((r) => setTimeout(r, 25));
      }
      expect(routes).toBe(1);
      // a message published on A's port reaches a subscriber on B's
      expect(await acrossRoute(urlA, urlB, "hello from A")).toBe("hello from A");
    } finally {
      a.child.kill("SIGTERM");
      b.child.kill("SIGTERM");
      expect(await a.exited).toBe(143);
      expect(await b.exited).toBe(143);
    }
  }, 60_000);
});
