import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  findNatsServer,
  HarnessError,
  probeNats,
  processAlive,
  startNatsServer,
} from "../src/index.js";

// Start, restart, kill -9, config text and the watchdog are @stan-ts/server's startNatsServer,
// tested in packages/server/test/nats-process.test.ts; these test what the harness adds.
describe("nats-server harness", () => {
  it("maxPayload and config text reach the server", async () => {
    await using server = await startNatsServer({
      maxPayload: 4096,
      config: "server_name: harness-probe",
    });
    expect(server.url).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);
    const info = await probeNats(server.url);
    expect(info.max_payload).toBe(4096);
    expect(info.server_name).toBe("harness-probe");
  });

  it("restarts on the same port; a restart that fails is a HarnessError", async () => {
    await using server = await startNatsServer();
    const port = server.port;
    await server.stop();
    const squatter = createServer();
    squatter.listen(port, "127.0.0.1");
    await once(squatter, "listening");
    try {
      const failed = await server.restart().catch((e: unknown) => e);
      expect(failed).toBeInstanceOf(HarnessError);
      expect((failed as HarnessError).message).toMatch(/exited \(\d+\) before ready/);
    } finally {
      squatter.close();
      await once(squatter, "close");
    }
    await server.restart();
    expect(server.port).toBe(port);
    await probeNats(server.url);
  });

  it("a test process that dies without cleanup leaves no server behind", async () => {
    const script = fileURLToPath(new URL("./fixtures/orphan.ts", import.meta.url));
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "--conditions=@stan-ts/source", script],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    let out = "";
    child.stdout.setEncoding("utf8");
    const pid = await new Promise<number>((resolve, reject) => {
      child.stdout.on("data", (c: string) => {
        out += c;
        const m = /pid=(\d+)/.exec(out);
        if (m?.[1]) resolve(Number(m[1]));
      });
      child.once("exit", (code) =>
        reject(new Error(`orphan fixture exited early (${code}): ${out}`)),
      );
    });
    expect(processAlive(pid)).toBe(true);
    const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGKILL"); // no exit hooks run: only the watchdog can clean up
    await gone;
    const deadline = Date.now() + 5000;
    while (processAlive(pid) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20)); // polling a PID: there is no event for another process's death
    }
    expect(processAlive(pid)).toBe(false);
  });

  it("a missing binary fails with an actionable HarnessError", async () => {
    const actionable = /apt-get install nats-server, or set NATS_SERVER_BIN/;
    expect(() => findNatsServer("/nonexistent/nats-server")).toThrow(HarnessError);
    expect(() => findNatsServer("/nonexistent/nats-server")).toThrow(actionable);
    const failed = await startNatsServer({ bin: "/nonexistent/nats-server" }).catch((e) => e);
    expect(failed).toBeInstanceOf(HarnessError);
    expect((failed as HarnessError).message).toMatch(actionable);
  });
});
