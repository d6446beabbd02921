import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { AckSchema, MsgProtoSchema, PubAckSchema, PubMsgSchema } from "@stan-ts/proto";
import { describe, expect, it } from "vitest";
import {
  decodeMsgProto,
  decodePubAck,
  encodeAck,
  encodeConstField,
  encodePubMsg,
  StanProtocolError,
} from "../src/index.js";

const big = new Uint8Array(300_000).map((_, i) => i % 251);
const MAX_U64 = 2n ** 64n - 1n;
/** Byte equality without vitest's per-element deep diff (slow on large buffers). */
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

describe("hand-written hot-path codecs agree with protobuf-es", () => {
  it.each([
    ["ascii", "client-1", "GUID0123456789ABCDEFGH", "orders.created", new Uint8Array([1, 2, 3])],
    ["empty data", "c", "g", "s", new Uint8Array(0)],
    ["unicode subject", "c", "g", "заказы.日本.🎉", new Uint8Array([0])],
    ["long subject", "c", "g", "x".repeat(300), big],
  ])("PubMsg: %s", (_n, clientID, guid, subject, data) => {
    const connID = new TextEncoder().encode("CONNIDCONNIDCONNID0123");
    const ours = encodePubMsg(
      encodeConstField(1, clientID),
      guid,
      subject,
      data,
      encodeConstField(6, connID),
    );
    const ref = toBinary(
      PubMsgSchema,
      create(PubMsgSchema, { clientID, guid, subject, data, connID }),
    );
    expect(same(ours, ref)).toBe(true);
    const back = fromBinary(PubMsgSchema, ours);
    expect(back.subject).toBe(subject);
    expect(same(back.data, data)).toBe(true);
  });

  it.each([
    [1n, "s"],
    [127n, "s"],
    [128n, "s"],
    [16_384n, "orders"],
    [2n ** 53n - 1n, "orders"],
    [2n ** 53n, "s"],
    [2n ** 53n + 1n, "orders"],
    [MAX_U64, "ünïcødé"],
    [0n, ""],
  ])("Ack: sequence %s", (sequence, subject) => {
    const ref = toBinary(AckSchema, create(AckSchema, { subject, sequence }));
    expect(encodeAck(subject, sequence)).toEqual(ref);
  });

  it.each([
    {
      sequence: MAX_U64,
      subject: "a.b",
      reply: "r",
      data: new Uint8Array([9, 8, 7]),
      timestamp: -(2n ** 63n),
      redelivered: true,
      redeliveryCount: 4294967295,
      CRC32: 77,
    },
    {
      sequence: 2n ** 53n + 3n,
      subject: "日本",
      reply: "",
      data: big,
      timestamp: 1_764_000_000_123_456_789n,
      redelivered: false,
      redeliveryCount: 0,
      CRC32: 0,
    },
    {
      sequence: 0n,
      subject: "",
      reply: "",
      data: new Uint8Array(0),
      timestamp: 2n ** 63n - 1n,
      redelivered: false,
      redeliveryCount: 1,
      CRC32: 0,
    },
  ])("MsgProto: seq $sequence", (init) => {
    const bytes = toBinary(MsgProtoSchema, create(MsgProtoSchema, init));
    const m = decodeMsgProto(bytes);
    expect(m.sequence).toBe(init.sequence);
    expect(m.subject).toBe(init.subject);
    expect(m.reply).toBe(init.reply);
    expect(same(m.data, init.data)).toBe(true);
    expect(m.timestamp).toBe(init.timestamp);
    expect(m.redelivered).toBe(init.redelivered);
    expect(m.redeliveryCount).toBe(init.redeliveryCount);
  });

  it("MsgProto: a subject that repeats between messages is never stale", () => {
    // a Node.js Buffer, as nats.js hands out (its slice() is a view, not a copy)
    const reused = Buffer.alloc(128);
    const subjects = ["a.b", "a.c", "a.c", "ünï", "a.b", ""];
    for (const [i, subject] of subjects.entries()) {
      const bytes = toBinary(
        MsgProtoSchema,
        create(MsgProtoSchema, { sequence: BigInt(i + 1), subject, data: Uint8Array.of(i) }),
      );
      reused.fill(0);
      reused.set(bytes); // the same buffer each time, as a socket's read buffer
      const m = decodeMsgProto(reused.subarray(0, bytes.length));
      expect(m.subject).toBe(subject);
      expect(m.sequence).toBe(BigInt(i + 1));
      expect([...m.data]).toEqual([i]);
    }
  });

  it("PubMsgs encoded one after another never share bytes (slab allocation)", () => {
    const client = encodeConstField(1, "c");
    const conn = encodeConstField(6, new TextEncoder().encode("CONN"));
    const kept: Array<[Uint8Array, number]> = [];
    for (let i = 0; i < 3000; i++) {
      const size = (i * 37) % 2000;
      const data = new Uint8Array(size).fill(i % 256);
      const subject = i % 7 === 0 ? `日本.${i}` : `s.${i}`;
      kept.push([encodePubMsg(client, `g${i}`, subject, data, conn), i]);
    }
    for (const [bytes, i] of kept) {
      const m = fromBinary(PubMsgSchema, bytes);
      expect(m.guid).toBe(`g${i}`);
      expect(m.subject).toBe(i % 7 === 0 ? `日本.${i}` : `s.${i}`);
      expect(m.data.length).toBe((i * 37) % 2000);
      expect(m.data.every((b) => b === i % 256)).toBe(true);
    }
  });

  it("PubAck decodes guid and error, and skips unknown fields", () => {
    const bytes = toBinary(PubAckSchema, create(PubAckSchema, { guid: "G1", error: "stan: boom" }));
    // field 9 (varint 150) and field 10 (bytes "A"): unknown to PubAck
    const withUnknown = new Uint8Array([...bytes, (9 << 3) | 0, 0x96, 0x01, (10 << 3) | 2, 1, 65]);
    expect(decodePubAck(bytes)).toEqual(["G1", "stan: boom"]);
    expect(decodePubAck(withUnknown)).toEqual(["G1", "stan: boom"]);
    expect(decodePubAck(new Uint8Array(0))).toEqual(["", ""]);
  });

  it("malformed input raises StanProtocolError, never garbage", () => {
    const good = toBinary(
      MsgProtoSchema,
      create(MsgProtoSchema, { sequence: 5n, subject: "abc", data: new Uint8Array(10) }),
    );
    for (let cut = 1; cut < good.length; cut++) {
      const truncated = good.subarray(0, cut);
      let threw = false;
      try {
        decodeMsgProto(truncated);
      } catch (err) {
        threw = true;
        expect(err).toBeInstanceOf(StanProtocolError);
      }
      // a cut exactly between fields is a valid shorter message; anything else must throw
      if (!threw) expect(() => fromBinary(MsgProtoSchema, truncated)).not.toThrow();
    }
    expect(() => decodeMsgProto(new Uint8Array([0xff, 0xff, 0xff]))).toThrow(StanProtocolError);
    expect(() => decodePubAck(new Uint8Array([0x0a, 0x05, 0x41]))).toThrow(StanProtocolError);
  });
});
