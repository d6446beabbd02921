import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { connect } from "nats";
import { describe, expect, it } from "vitest";
import { findNatsServer, HarnessError, startNatsServer } from "../src/index.js";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function roundTrip(url: string): Promise<string> {
  const nc = await connect({ servers: url, reconnect: false });
  try {
    const sub = nc.subscribe("harness.echo", { max: 1 });
    (async () => {
      for await (const m of sub) m.respond(m.data);
    })();
    const reply = await nc.request("harness.echo", new TextEncoder().encode("ping"), {
      timeout: 2000,
    });
    return new TextDecoder().decode(reply.data);
  } finally {
    await nc.close();
  }
}

describe("nats-server harness", () => {
  it("starts on a free loopback port, restarts on the same port, and kill -9 leaves nothing", async () => {
    const server = await startNatsServer();
    const first = server.pid;
    expect(server.url).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);
    expect(await roundTrip(server.url)).toBe("ping");

    const port = server.port;
    await server.restart();
    expect(server.port).toBe(port);
    expect(server.pid).not.toBe(first);
    expect(alive(first)).toBe(false);
    expect(await roundTrip(server.url)).toBe("ping");

    const second = server.pid;
    await server.kill();
    expect(server.running).toBe(false);
    expect(alive(second)).toBe(false);
    await server[Symbol.asyncDispose]();
  });

  it("await using stops the server at the end of the scope", async () => {
    let pid = -1;
    {
      await using server = await startNatsServer();
      pid = server.pid;
      expect(alive(pid)).toBe(true);
    }
    expect(alive(pid)).toBe(false);
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
    expect(alive(pid)).toBe(true);
    const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGKILL"); // no exit hooks run: only the watchdog can clean up
    await gone;
    const deadline = Date.now() + 5000;
    while (alive(pid) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20)); // polling a PID: there is no event for another process's death
    }
    expect(alive(pid)).toBe(false);
  });

  it("a missing binary fails with an actionable message", () => {
    expect(() => findNatsServer("/nonexistent/nats-server")).toThrow(HarnessError);
    expect(() => findNatsServer("/nonexistent/nats-server")).toThrow(
      /apt-get install nats-server, or set NATS_SERVER_BIN/,
    );
  });
});
