import { type ChildProcess, spawn } from "node:child_process";
import { appendFileSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { StartPosition } from "@stan-ts/proto";
import {
  skipWithoutServerControl,
  startNatsServer,
  streamingMode,
  streamingServer,
} from "@stan-ts/testing";
import { beforeEach, describe, expect, it } from "vitest";
import { dec, RawClient, uid, until } from "./helpers.js";

const mode = streamingMode();

describe("file store", () => {
  beforeEach(skipWithoutServerControl); // restarts and kills the server
  it("a restart keeps messages, sequences, clients and subscriptions", async () => {
    await using stan = await streamingServer({ store: "file" });
    const c = await RawClient.connect(stan.url, stan.clusterId, uid());
    await c.publishMany("fs.keep", 10);
    const d = await c.subscribe("fs.keep", {
      durableName: "d",
      startPosition: StartPosition.First,
      maxInFlight: 5,
      ackWaitInSecs: 1,
    });
    await d.waitFor(5);
    for (const s of [1, 2, 3]) d.ack(s);
    // the acks are flushed by the close of another sub
    const tmp = await c.subscribe("fs.other");
    await tmp.unsubscribe();

    await stan.restart();

    // the client is recovered as if still connected: no reconnect needed
    expect(await c.ping()).toEqual({ error: "", bytes: 0 });
    const p = await c.publish("fs.keep", "after-restart");
    expect(p.error).toBe("");
    // the durable came back online on the same ack inbox: 4 and 5 are redelivered, then 6..
    const before = d.received.length;
    await d.waitFor(before + 5, 5000);
    const after = d.received.slice(before);
    expect(after.slice(0, 2).map((m) => [Number(m.sequence), m.redelivered])).toEqual([
      [4, true],
      [5, true],
    ]);
    expect(after.slice(2).map((m) => Number(m.sequence))).toEqual([6, 7, 8]);
    for (const m of after) d.ack(m.sequence);
    const all = await c.subscribe("fs.keep", { startPosition: StartPosition.First });
    await all.waitFor(11);
    expect(all.seqs()).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(dec.decode(all.received[10]!.data)).toBe("after-restart");
    await c.close();
  });

  // binary mode: SIGKILL of nats-streaming-server; embedded: a crash without flushing buffers
  it("a kill during a publish burst loses nothing acknowledged and repeats no sequence", async () => {
    await using stan = await streamingServer({ store: "file" });
    const c = await RawClient.connect(stan.url, stan.clusterId, uid());
    const acked = new Set<string>();
    let killing: Promise<void> | undefined;
    const pubs: Array<Promise<void>> = [];
    for (let i = 0; i < 3000; i++) {
      pubs.push(
        c.publish("crash.chan", `m${i}`).then(
          (r) => {
            if (r.error === "") acked.add(`m${i}`);
            if (acked.size === 500) killing ??= stan.kill();
          },
          () => {}, // unacknowledged: the server was killed first
        ),
      );
    }
    await Promise.all(pubs);
    expect(killing).toBeDefined();
    await killing;
    await stan.restart();
    // the client is recovered from the file store: no reconnect
    expect((await c.publish("crash.chan", "after-crash")).error).toBe("");
    const sub = await c.subscribe("crash.chan", {
      startPosition: StartPosition.First,
      maxInFlight: 10_000,
    });
    await until(
      () => sub.received.some((m) => dec.decode(m.data) === "after-crash"),
      10_000,
      "the message published after the restart",
    );
    const stored = new Set(sub.received.map((m) => dec.decode(m.data)));
    for (const g of acked) expect(stored.has(g), g).toBe(true);
    // sequences are 1..n without repeats or gaps, and the new message got the last one
    const seqs = sub.seqs();
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
    expect(dec.decode(sub.received.at(-1)!.data)).toBe("after-crash");
    await c.close();
  });

  it("refuses to start on a directory of another cluster ID", async () => {
    const dir = mkdtempSync(join(tmpdir(), "stan-ts-cid-"));
    try {
      const a = await streamingServer({ store: "file", dir });
      await a[Symbol.asyncDispose]();
      await expect(streamingServer({ store: "file", dir, clusterId: "other" })).rejects.toThrow(
        'cluster ID "other" does not match recovered value of "test-cluster"',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // Embedded only: it writes into the embedded store's msgs.dat, a layout the Go server's
  // msgs.<n>.dat/.idx slices do not share.
  it.skipIf(mode !== "embedded")(
    "a torn tail record is truncated, never served, and not a reason to refuse to start",
    async () => {
      await using stan = await streamingServer({ store: "file" });
      const c = await RawClient.connect(stan.url, stan.clusterId, uid());
      await c.publishMany("fs.torn", 3);
      await stan.stop();
      const file = join(stan.dir!, "fs.torn", "msgs.dat");
      const size = statSync(file).size;
      // half a record: a header announcing 100 bytes, then 10 bytes of garbage
      const torn = Buffer.alloc(18);
      torn.writeUInt32LE(100, 0);
      appendFileSync(file, torn);
      await stan.restart();
      expect(statSync(file).size).toBe(size);
      expect((await c.publish("fs.torn", "next")).error).toBe("");
      const all = await c.subscribe("fs.torn", { startPosition: StartPosition.First });
      await all.waitFor(4);
      expect(all.seqs()).toEqual([1, 2, 3, 4]);
      await c.close();
    },
  );
});

const bin = fileURLToPath(new URL("../src/bin.ts", import.meta.url));

function spawnServer(natsUrl: string, dir: string): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "--conditions=@stan-ts/source",
      bin,
      "-ns",
      natsUrl,
      "-store",
      "file",
      "-dir",
      dir,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  return new Promise((resolve, reject) => {
    let log = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (s: string) => {
      log += s;
      if (log.includes('"listening"')) resolve(child);
    });
    child.once("exit", (code) => reject(new Error(`stan-server exited ${code}: ${log}`)));
  });
}

describe.skipIf(mode !== "embedded")("kill -9 of a stan-server process", () => {
  it("loses nothing acknowledged and repeats no sequence", { timeout: 60_000 }, async () => {
    await using nats = await startNatsServer();
    const dir = mkdtempSync(join(tmpdir(), "stan-ts-kill-"));
    try {
      let child = await spawnServer(nats.url, dir);
      const c = await RawClient.connect(nats.url, "test-cluster", uid());
      const acked = new Set<string>();
      const total = 3000;
      const pubs: Array<Promise<void>> = [];
      let killed = false;
      for (let i = 0; i < total; i++) {
        pubs.push(
          c.publish("kill.chan", `m${i}`).then(
            (r) => {
              if (r.error === "") acked.add(`m${i}`);
              if (acked.size === 500 && !killed) {
                killed = true;
                child.kill("SIGKILL");
              }
            },
            () => {},
          ),
        );
      }
      await Promise.all(pubs);
      expect(killed).toBe(true);
      await new Promise<void>((r) =>
        child.exitCode !== null || child.signalCode !== null ? r() : child.once("exit", () => r()),
      );
      child = await spawnServer(nats.url, dir);
      const sub = await c.subscribe("kill.chan", {
        startPosition: StartPosition.First,
        maxInFlight: 10_000,
      });
      const next = await c.publish("kill.chan", "after-crash");
      expect(next.error).toBe("");
      const want = acked.size + 1;
      await sub.waitFor(want, 10_000);
      const seqs = sub.seqs();
      const stored = new Set(sub.received.map((m) => dec.decode(m.data)));
      for (const g of acked) expect(stored.has(g), g).toBe(true);
      // sequences are 1..n without repeats or gaps, and the new message got the next one
      expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
      expect(dec.decode(sub.received.at(-1)!.data)).toBe("after-crash");
      await c.close();
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
      expect(readdirSync(dir)).toContain("kill.chan");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
