/**
 * Issue 12, in the `stan-server` bin: a cluster ID the server cannot serve exits 2 with the
 * reason (the rule of `stan server`: clusterIdProblem of @stan-ts/core), and a client port
 * already in use says so, with what to do, instead of nats-server's log. Run from the sources
 * and, once `pnpm build` ran, as the built dist/bin.cjs.
 */
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { type BinProcess, builtBin, startBin } from "./bin-lifecycle.js";

const running: BinProcess[] = [];
const listeners: Server[] = [];
afterEach(async () => {
  for (const b of running.splice(0)) {
    b.child.kill("SIGKILL");
    await b.exited;
  }
  await Promise.all(listeners.splice(0).map((l) => new Promise((r) => l.close(r))));
});

/** Runs the bin to its exit; resolves with the status and everything it wrote to stderr. */
async function runToExit(
  args: string[],
  built: boolean,
): Promise<{ status: number | string; stderr: string }> {
  const b = startBin(args, built ? { env: {} } : undefined);
  running.push(b);
  const status = await b.exited;
  return { status, stderr: b.log() };
}

/** A port taken by a plain TCP listener on 127.0.0.1. */
async function takenPort(): Promise<number> {
  const l = createServer();
  listeners.push(l);
  await new Promise<void>((r) => l.listen(0, "127.0.0.1", r));
  return (l.address() as { port: number }).port;
}

const modes = existsSync(builtBin) ? [false, true] : [false];

describe.each(modes)("stan-server errors (built bin: %s)", (built) => {
  it("-cid 'bad id' exits 2 with the reason", async () => {
    const r = await runToExit(["-cid", "bad id"], built);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('stan-server: invalid cluster ID "bad id": no spaces, wildcards');
  }, 30_000);

  it("-cid '' exits 2 and asks for a cluster ID", async () => {
    const r = await runToExit(["-cid", ""], built);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("stan-server: -cid/--cluster_id needs a cluster ID");
  }, 30_000);

  it("a -p already in use says so and how to choose another, with no install hint", async () => {
    const port = await takenPort();
    const r = await runToExit(["-p", String(port)], built);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`stan-server: 127.0.0.1:${port} is already in use`);
    expect(r.stderr).toContain("choose another port with -p <port>");
    expect(r.stderr).not.toMatch(/apt-get|install/);
  }, 30_000);
});
