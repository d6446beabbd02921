/**
 * What a new user meets first, through the real `stan` bin: README's example as written, the
 * way to run `stan` from a clone, and the messages of the common mistakes.
 */

import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { findNatsServer } from "@stan-ts/server";
import { lockPort } from "@stan-ts/testing";
import { afterAll, describe, expect, test } from "vitest";
import { listening, spawnStan, unique, useServer } from "./helpers.js";

const server = useServer();
const env = () => ({ NATS_URL: server().url, STAN_CLUSTER_ID: server().clusterId });
/** No NATS_URL or STAN_CLUSTER_ID: the defaults, as on a new user's shell. */
const NO_ENV = { NATS_URL: undefined, STAN_CLUSTER_ID: undefined };
const ROOT = fileURLToPath(new URL("../../..", import.meta.url));

/** Listens on 127.0.0.1 (a free port unless one is given); resolves with the server, or undefined when the port is taken. */
function listen(port = 0): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(undefined));
    s.listen(port, "127.0.0.1", () => resolve(s));
  });
}

function portOf(s: Server): number {
  const a = s.address();
  if (a === null || typeof a === "string") throw new Error("no port");
  return a.port;
}

const closeServer = (s: Server) => new Promise<void>((resolve) => s.close(() => resolve()));

describe("README's CLI example, as written", () => {
  test("stan server (port 4222), stan sub orders --all, stan pub orders 'hello world'", async (ctx) => {
    // the stranger's-path test runs the same example on the same port: take turns
    await using _port = await lockPort(4222);
    const probe = await listen(4222);
    if (!probe) ctx.skip("port 4222 is in use on this machine: the example as written needs it");
    else await closeServer(probe);
    const srv = spawnStan(["server"], NO_ENV);
    try {
      await srv.stderr.waitFor(
        (t) =>
          t.includes("streaming server ready on nats://127.0.0.1:4222") ||
          t.includes("is already in use"),
        "the server on 4222",
        20_000,
      );
      // Something outside the suite took 4222 after the probe.
      if (srv.stderr.text.includes("127.0.0.1:4222 is already in use")) {
        ctx.skip("port 4222 was taken by another process while this test started its server");
      }
      const sub = spawnStan(["sub", "orders", "--all"], NO_ENV);
      await listening(sub);
      const pub = spawnStan(["pub", "orders", "hello world"], NO_ENV);
      expect(await pub.exit()).toBe(0);
      expect(pub.stdout.text).toMatch(/^[A-Za-z0-9]{22}\n$/);
      await sub.stdout.waitFor((t) => t.includes("orders: hello world"), "the message");
      sub.child.kill("SIGINT");
      expect(await sub.exit()).toBe(0);
    } finally {
      const started = srv.stderr.text.includes("streaming server ready on");
      srv.child.kill("SIGINT");
      const code = await srv.exit(20_000);
      if (started) expect(code).toBe(0);
    }
  }, 120_000); // it may wait for the stranger's-path test to free 4222

  test("stan server --help gives 4222 as the default port", async () => {
    const r = spawnStan(["server", "--help"], NO_ENV);
    expect(await r.exit()).toBe(0);
    expect(r.stdout.text).toContain("a nats-server child on 127.0.0.1 port 4222");
    expect(r.stdout.text).toContain("(default: 4222, -p 0: a free port;");
    expect(r.stdout.text).not.toContain("default: free port");
  });

  test("from a clone: pnpm stan runs the command from the sources", async () => {
    const { stdout } = await promisify(execFile)("pnpm", ["-s", "stan", "--version"], {
      cwd: ROOT,
    });
    expect(stdout).toMatch(/^stan \d+\.\d+\.\d+\n$/);
  });
});

describe("stan server: mistakes get a message that says what is wrong", () => {
  test("a port in use says so (no hint about installing nats-server); exit 1", async () => {
    const taken = await listen();
    if (!taken) throw new Error("cannot listen on a free port");
    try {
      const port = portOf(taken);
      const r = spawnStan(["server", "-p", String(port)], NO_ENV);
      expect(await r.exit(20_000)).toBe(1);
      expect(r.stderr.text).toContain(`stan server: 127.0.0.1:${port} is already in use`);
      expect(r.stderr.text).toContain("-p <port> (-p 0: a free one)");
      expect(r.stderr.text).not.toContain("install nats-server");
    } finally {
      await closeServer(taken);
    }
  });

  test("-cid with a space or empty is a usage error (exit 2) naming the problem", async () => {
    const bad = spawnStan(["server", "-cid", "bad id"], NO_ENV);
    const empty = spawnStan(["server", "-cid", ""], NO_ENV);
    // both awaited (an accepted ID would leave a server running until the exit timeout kills it)
    const [badCode, emptyCode] = await Promise.all([bad.exit(), empty.exit()]);
    expect(badCode).toBe(2);
    expect(bad.stderr.text).toContain('stan server: invalid cluster ID "bad id"');
    expect(bad.stderr.text).not.toContain("DISCONNECT");
    expect(emptyCode).toBe(2);
    expect(empty.stderr.text).toContain("-cid/--cluster_id needs a cluster ID");
  });

  test("pub and sub: a cluster ID the client refuses is a usage error too (exit 2)", async () => {
    const r = spawnStan(["pub", "-c", "bad id", "orders", "x"], env());
    expect(await r.exit()).toBe(2);
    expect(r.stderr.text).toContain('stan pub: invalid clusterId "bad id"');
    expect(r.stderr.text).toContain('Run "stan pub --help" for usage.');
  });

  test("-store file without -dir is a usage error (exit 2)", async () => {
    const r = spawnStan(["server", "-store", "file"], NO_ENV);
    expect(await r.exit()).toBe(2);
    expect(r.stderr.text).toContain("stan server: -store file needs -dir <directory>");
    expect(r.stderr.text).toContain('Run "stan server --help" for usage.');
  });

  describe("a non-loopback address", () => {
    // The real nats-server behind a wrapper that records its arguments and then listens on
    // loopback all the same: the test serves nobody beyond this host.
    const dir = mkdtempSync(join(tmpdir(), "stan-cli-addr-"));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    test("is accepted with a warning on stderr, and passed to nats-server", async () => {
      const wrapper = join(dir, "nats-server");
      writeFileSync(
        wrapper,
        `#!/bin/sh\nprintf '%s\\n' "$@" > "$0.args"\nexec "${findNatsServer()}" "$@" -a 127.0.0.1\n`,
      );
      chmodSync(wrapper, 0o755);
      const srv = spawnStan(["server", "-a", "10.11.12.13", "-p", "0", "-l", "silent"], {
        ...NO_ENV,
        NATS_SERVER_BIN: wrapper,
      });
      try {
        await srv.stderr.waitFor((t) => t.includes("streaming server ready on"), "ready", 20_000);
        expect(srv.stderr.text).toContain(
          "stan server: warning: listening on 10.11.12.13, not loopback: other hosts can reach this server",
        );
        const args = readFileSync(`${wrapper}.args`, "utf8").split("\n");
        const at = args.lastIndexOf("-a");
        expect(args.slice(at, at + 2)).toEqual(["-a", "10.11.12.13"]);
      } finally {
        srv.child.kill("SIGINT");
        expect(await srv.exit(20_000)).toBe(0);
      }
      const loopback = spawnStan(["server", "-a", "127.0.0.1", "-p", "0", "-l", "silent"], NO_ENV);
      try {
        await loopback.stderr.waitFor((t) => t.includes("ready on"), "ready", 20_000);
        expect(loopback.stderr.text).not.toContain("warning");
      } finally {
        loopback.child.kill("SIGINT");
        expect(await loopback.exit(20_000)).toBe(0);
      }
    });
  });
});

describe("stan pub and stan bench report what was done", () => {
  test("pub --json - on a bad line counts the acks of the lines before it, once settled", async () => {
    const subject = unique("json");
    const input = `${Array.from({ length: 50 }, (_, i) => JSON.stringify({ i })).join("\n")}\nnot json\n{"i":99}\n`;
    const r = spawnStan(["pub", subject, "--json", "-", "-q"], env(), input);
    expect(await r.exit()).toBe(1);
    expect(r.stdout.text).toBe("50\n");
    expect(r.stderr.text).toContain("stdin line 51 is not valid JSON");
    expect(r.stderr.text).toContain("the lines before it were published (50 acknowledged)");
  });

  test("bench on Ctrl-C prints 'interrupted' and the figures so far; exit 130", async () => {
    const r = spawnStan(["bench", "--msgs", "10000000", "--size", "16", "--progress"], env());
    // The progress bar shows acknowledged publishes: interrupt once some are in.
    await r.stderr.waitFor((t) => /published [1-9][\d,]*\//.test(t), "some acks", 20_000);
    r.child.kill("SIGINT");
    expect(await r.exit()).toBe(130);
    expect(r.stderr.text).toMatch(
      /stan bench: interrupted: [1-9]\d* of 10000000 messages published; the figures so far:/,
    );
    expect(r.stdout.text).toMatch(/^NATS Streaming Pub stats: [\d,]+ msgs\/sec ~ [\d.]+ MB\/sec$/m);
    expect(r.stdout.text).toMatch(
      /^ {2}\[1\] [\d,]+ msgs\/sec ~ [\d.]+ MB\/sec \([1-9]\d* msgs\)$/m,
    );
  });
});
