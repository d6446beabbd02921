import { describe, expect, it } from "vitest";
import { FrameWriter } from "../src/frames.js";

/** A stand-in for a nats.js connection's protocol handler that records what it is handed. */
function fakeConnection() {
  const commands: Uint8Array[] = [];
  const conn = {
    closed: false,
    protocol: {
      noMorePublishing: false,
      sendCommand(cmd: Uint8Array) {
        commands.push(cmd.slice()); // nats.js copies at its flush; so does this
      },
    },
    isClosed: () => conn.closed,
  };
  return { conn, commands };
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const bytes = (s: string) => new TextEncoder().encode(s);

describe("FrameWriter", () => {
  it("is only made for a connection with the nats.js internals it uses", () => {
    expect(FrameWriter.for({ isClosed: () => false })).toBeUndefined();
    expect(
      FrameWriter.for({ isClosed: () => false, protocol: { sendCommand() {} } } as object & {
        isClosed(): boolean;
      }),
    ).toBeUndefined();
    expect(FrameWriter.for(fakeConnection().conn)).toBeDefined();
  });

  it("writes PUB frames byte for byte, with and without a reply subject, in one command", () => {
    const { conn, commands } = fakeConnection();
    const w = FrameWriter.for(conn) as FrameWriter;
    const sizes = [0, 1, 9, 10, 99, 100, 12_345];
    for (const n of sizes) w.publish("a.b", n % 2 ? "_INBOX.r" : "", new Uint8Array(n).fill(120));
    w.publish("ünï.cödé", "", bytes("ok"));
    expect(commands).toHaveLength(0); // nothing goes out before flush()
    w.flush();
    expect(commands).toHaveLength(1);
    const expected =
      sizes.map((n) => `PUB a.b ${n % 2 ? "_INBOX.r " : ""}${n}\r\n${"x".repeat(n)}\r\n`).join("") +
      "PUB ünï.cödé 2\r\nok\r\n";
    expect(text(commands[0] as Uint8Array)).toBe(expected);
    w.flush();
    expect(commands).toHaveLength(1); // nothing new: no empty command
  });

  it("starts a new chunk when one is full, never rewriting bytes already handed over", () => {
    const { conn, commands } = fakeConnection();
    const w = FrameWriter.for(conn) as FrameWriter;
    const handed: Uint8Array[] = [];
    conn.protocol.sendCommand = (cmd: Uint8Array) => {
      handed.push(cmd); // kept by reference, as nats.js keeps it until its flush
      commands.push(cmd.slice());
    };
    const big = new Uint8Array(70_000).fill(121);
    w.publish("s", "", bytes("first"));
    w.flush();
    w.publish("s", "", big); // larger than a 64 KiB chunk
    w.publish("s", "", bytes("last"));
    w.flush();
    expect(handed.map(text)).toEqual(commands.map(text));
    expect(text(handed[0] as Uint8Array)).toBe("PUB s 5\r\nfirst\r\n");
    const all = handed.map(text).join("");
    expect(all).toBe(
      `PUB s 5\r\nfirst\r\nPUB s 70000\r\n${"y".repeat(70_000)}\r\nPUB s 4\r\nlast\r\n`,
    );
  });

  it("is unusable while the connection drains or once it is closed; discard drops unsent frames", () => {
    const { conn, commands } = fakeConnection();
    const w = FrameWriter.for(conn) as FrameWriter;
    expect(w.usable).toBe(true);
    conn.protocol.noMorePublishing = true;
    expect(w.usable).toBe(false);
    conn.protocol.noMorePublishing = false;
    conn.closed = true;
    expect(w.usable).toBe(false);
    w.publish("s", "", bytes("dropped"));
    expect(w.pendingBytes).toBeGreaterThan(0);
    w.discard();
    expect(w.pendingBytes).toBe(0);
    w.flush();
    expect(commands).toHaveLength(0);
  });
});
