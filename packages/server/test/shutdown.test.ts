/**
 * Issue 14 point 3: on SIGTERM `stan-server` takes no more requests (its "stopping" line is
 * written once the engine has stopped taking them), flushes and closes the store, stops
 * nats-server and exits 143. A publish and a subscribe sent right after the signal may be
 * answered only if they were taken before it was handled; those sent after the "stopping"
 * line are never answered; and a file store reopens clean with every acknowledged message.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type BinProcess, startBin } from "./bin-lifecycle.js";
import { dec, RawClient } from "./helpers.js";

const running: BinProcess[] = [];
const dirs: string[] = [];
const clients: RawClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.vanish().catch(() => {});
  for (const b of running.splice(0)) {
    b.child.kill("SIGKILL");
    await b.exited;
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function up(args: string[]): Promise<{ bin: BinProcess; client: RawClient }> {
  const bin = startBin(args);
  running.push(bin);
  const line = await bin.line('"listening"');
  const url = /"url":"([^"]+)"/.exec(line)![1]!;
  const client = await RawClient.connect(url, "test-cluster", `shut-${running.length}`);
  clients.push(client);
  return { bin, client };
}

/** Settles each request: true when the server answered it without error. */
function answered(p: Promise<{ error: string }>): Promise<boolean> {
  return p.then(
    (r) => r.error === "",
    () => false,
  );
}

describe.each(["memory", "file"] as const)("shutdown on SIGTERM, %s store", (store) => {
  it("stops taking requests first, exits 143, keeps every acknowledged message", async () => {
    const dir = store === "file" ? mkdtempSync(join(tmpdir(), "stan-shut-")) : undefined;
    if (dir) dirs.push(dir);
    const storeArgs = dir ? ["-store", "file", "-dir", dir] : [];
    const { bin, client } = await up(storeArgs);
    const before = Array.from({ length: 20 }, (_, i) => `before${i}`);
    for (const a of await Promise.all(before.map((d) => client.publish("shut.ch", d)))) {
      expect(a.error).toBe("");
    }

    bin.child.kill("SIGTERM");
    // right after the signal: publishes and a subscribe, as fast as they go out
    const right = Array.from({ length: 20 }, (_, i) => `right${i}`);
    const rightAcks = right.map((d) => answered(client.publish("shut.ch", d)));
    const rightSub = answered(client.subRequest({ subject: "shut.ch" }));
    await bin.line('"stopping"');
    // after the signal was handled: never answered
    const late = [
      answered(client.publish("shut.ch", "late")),
      answered(client.subRequest({ subject: "shut.ch" })),
    ];
    expect(await Promise.all(late)).toEqual([false, false]);
    expect(await bin.exited).toBe(143);
    const rightAnswered = await Promise.all(rightAcks);
    await rightSub; // answered or not: both are allowed before the signal was handled
    if (!dir) return;

    // the file store reopens clean, with everything acknowledged
    const { bin: again, client: reader } = await up(storeArgs);
    const sub = await reader.subscribe("shut.ch", { startPosition: 4 /* First */ });
    const expected = [...before, ...right.filter((_, i) => rightAnswered[i])];
    const got = (await sub.waitFor(expected.length)).map((m) => dec.decode(m.data));
    for (const d of expected) expect(got).toContain(d);
    expect(got.slice(0, before.length)).toEqual(before);
    expect(again.log()).not.toMatch(/"level":"(warn|error)"/);
  }, 60_000);
});
