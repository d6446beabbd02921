import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { probeNats, processAlive } from "@stan-ts/testing";
import { describe, expect, it } from "vitest";
import { findNatsServer, startNatsServer } from "../src/index.js";

const MISSING =
  /nats-server not found \(tried "\/nonexistent\/nats-server"\): apt-get install nats-server, or set NATS_SERVER_BIN/;

describe("startNatsServer (the nats-server child process)", () => {
  it("starts on a free loopback port, restarts on the same port, and kill -9 ends it", async () => {
    const nats = await startNatsServer();
    const first = nats.pid;
    expect(nats.url).toBe(`nats://127.0.0.1:${nats.port}`);
    expect(nats.port).toBeGreaterThan(0);
    expect(nats.running).toBe(true);
    await probeNats(nats.url);

    const port = nats.port;
    await nats.restart();
    expect(nats.port).toBe(port);
    expect(nats.pid).not.toBe(first);
    expect(processAlive(first)).toBe(false);
    await probeNats(nats.url);

    const second = nats.pid;
    await nats.kill();
    expect(nats.running).toBe(false);
    expect(processAlive(second)).toBe(false);
    await nats.stop(); // idempotent once it has exited

    await nats.restart(); // after a stop too, on the same port
    expect(nats.port).toBe(port);
    await probeNats(nats.url);
    await nats.stop();
    expect(nats.running).toBe(false);
  });

  it("await using stops it at the end of the scope", async () => {
    let pid = -1;
    {
      await using nats = await startNatsServer();
      pid = nats.pid;
      expect(processAlive(pid)).toBe(true);
    }
    expect(processAlive(pid)).toBe(false);
  });

  it("passes config text and extra args, and keeps them across a restart", async () => {
    await using nats = await startNatsServer({
      config: "max_payload: 2097152",
      args: ["--server_name", "stan-ts-probe"],
    });
    for (const round of [1, 2]) {
      const info = await probeNats(nats.url);
      expect(info.max_payload, `round ${round}`).toBe(2_097_152);
      expect(info.server_name, `round ${round}`).toBe("stan-ts-probe");
      if (round === 1) await nats.restart();
    }
  });

  it.skipIf(process.platform !== "linux")(
    "removes its temporary config file when the process exits",
    async () => {
      const nats = await startNatsServer({ config: "max_payload: 2097152" });
      const argv = readFileSync(`/proc/${nats.pid}/cmdline`, "utf8").split("\0");
      const confFile = argv[argv.indexOf("-c") + 1] ?? "";
      expect(confFile).toMatch(/nats\.conf$/);
      expect(existsSync(confFile)).toBe(true);
      await nats.stop();
      expect(existsSync(confFile)).toBe(false);
    },
  );

  it("a missing binary fails with an actionable message", async () => {
    expect(() => findNatsServer("/nonexistent/nats-server")).toThrow(MISSING);
    await expect(startNatsServer({ bin: "/nonexistent/nats-server" })).rejects.toThrow(MISSING);
    expect(findNatsServer(process.env.NATS_SERVER_BIN)).toBeTruthy();
  });

  it("a server that exits before it is ready fails with its log", async () => {
    await expect(startNatsServer({ config: "this is { not a config" })).rejects.toThrow(
      /nats-server exited \(\d+\) before ready:\n.+/s,
    );
  });

  it("a server that is not ready in time is killed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "stan-ts-fake-nats-"));
    try {
      const bin = join(dir, "fake-nats-server");
      const pidFile = join(dir, "pid");
      // Never logs "Server is ready".
      writeFileSync(bin, `#!/bin/sh\necho $$ > "${pidFile}"\nexec sleep 60\n`);
      chmodSync(bin, 0o755);
      await expect(startNatsServer({ bin, readyTimeout: 1000 })).rejects.toThrow(
        /nats-server not ready after 1000 ms/,
      );
      expect(processAlive(Number(readFileSync(pidFile, "utf8")))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
