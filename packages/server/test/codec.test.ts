import {
  AckSchema,
  decode,
  encode,
  MsgProtoSchema,
  PubAckSchema,
  PubMsgSchema,
} from "@stan-ts/proto";
import { describe, expect, it } from "vitest";
import {
  decodeAck,
  decodePubMsg,
  encodeMsgProto,
  encodePubAck,
  readMsgHeader,
  withRedelivery,
} from "../src/codec.js";

const enc = new TextEncoder();

describe("hand-written codecs agree with protobuf-es", () => {
  it("PubMsg decode: fields that repeat between messages are never stale", () => {
    // clientID, subject and connID reuse the last decoded string while their bytes are equal:
    // same length and different bytes, the same bytes in a reused buffer, non-ASCII text
    const seq = [
      { clientID: "c1", subject: "a.b", connID: Uint8Array.of(1, 2, 0xff) },
      { clientID: "c2", subject: "a.c", connID: Uint8Array.of(1, 2, 0xfe) },
      { clientID: "c2", subject: "a.c", connID: Uint8Array.of(1, 2, 0xfe) },
      { clientID: "cé", subject: "ünï.x", connID: enc.encode("conn") },
      { clientID: "c1", subject: "a.b", connID: Uint8Array.of(1, 2, 0xff) },
    ];
    const reused = new Uint8Array(256);
    for (const [i, m] of seq.entries()) {
      const bytes = encode(PubMsgSchema, { ...m, guid: `g${i}`, reply: i % 2 ? "r" : "" });
      reused.fill(0);
      reused.set(bytes);
      const got = decodePubMsg(reused.subarray(0, bytes.length));
      expect(got.clientID).toBe(m.clientID);
      expect(got.subject).toBe(m.subject);
      expect(got.guid).toBe(`g${i}`);
      expect(got.reply).toBe(i % 2 ? "r" : "");
      expect(got.connID).toBe(Buffer.from(m.connID).toString("latin1"));
    }
    const ack = (subject: string) =>
      decodeAck(encode(AckSchema, { subject, sequence: 1n })).subject;
    expect([ack("x.y"), ack("x.z"), ack("x.z"), ack("ü")]).toEqual(["x.y", "x.z", "x.z", "ü"]);
  });

  it("PubMsg decode", () => {
    const cases = [
      {
        clientID: "c1",
        guid: "g",
        subject: "foo.bar",
        data: enc.encode("héllo"),
        connID: enc.encode("conn"),
      },
      { guid: "only-guid" },
      {
        clientID: "x",
        guid: "y",
        subject: "s",
        reply: "r",
        data: new Uint8Array(300).fill(7),
        sha256: new Uint8Array(32),
      },
      {},
    ];
    for (const c of cases) {
      const bytes = encode(PubMsgSchema, c);
      const mine = decodePubMsg(bytes);
      const ref = decode(PubMsgSchema, bytes);
      expect(mine.clientID).toBe(ref.clientID);
      expect(mine.guid).toBe(ref.guid);
      expect(mine.subject).toBe(ref.subject);
      expect(mine.reply).toBe(ref.reply);
      expect(new Uint8Array(mine.data)).toEqual(ref.data);
      expect(Buffer.from(mine.connID, "latin1")).toEqual(Buffer.from(ref.connID));
    }
    expect(() => decodePubMsg(Uint8Array.of(0xff, 0xff))).toThrow();
    expect(() => decodePubMsg(Uint8Array.of(0x12, 0x05, 0x61))).toThrow();
  });

  it("Ack decode, including unknown fields", () => {
    const bytes = encode(AckSchema, { subject: "chan", sequence: 123456789n });
    expect(decodeAck(bytes)).toEqual({ subject: "chan", sequence: 123456789 });
    const withUnknown = Buffer.concat([bytes, Uint8Array.of(0x18, 0x01)]);
    expect(decodeAck(withUnknown)).toEqual({ subject: "chan", sequence: 123456789 });
  });

  it("MsgProto encode, with and without redelivery", () => {
    const [ms, sub] = [1_764_000_000_123, 456_789];
    const ts = 1_764_000_000_123_456_789n;
    for (const [seq, reply, data] of [
      [1, "", enc.encode("x")],
      [2 ** 40, "reply.to", new Uint8Array(0)],
      [300, "", new Uint8Array(1000).fill(1)],
    ] as const) {
      const bytes = encodeMsgProto(seq, "chan.a", reply, data, ms, sub);
      expect(bytes).toEqual(
        Buffer.from(
          encode(MsgProtoSchema, {
            sequence: BigInt(seq),
            subject: "chan.a",
            reply,
            data,
            timestamp: ts,
          }),
        ),
      );
      expect(readMsgHeader(bytes)).toEqual({ sequence: seq, timestamp: ts });
      const re = decode(MsgProtoSchema, withRedelivery(bytes, 3));
      expect([re.sequence, re.redelivered, re.redeliveryCount, re.timestamp]).toEqual([
        BigInt(seq),
        true,
        3,
        ts,
      ]);
    }
  });

  it("MsgProto timestamp varint (ms * 1e6 + sub, no BigInt) matches protobuf-es", () => {
    const cases: Array<[number, number]> = [
      [0, 0],
      [0, 1],
      [0, 127],
      [0, 128],
      [0, 999_999],
      [1, 0],
      [4_294, 967_295], // 2^32 - 1 ns
      [4_294, 967_296], // 2^32 ns
      [Date.now(), 0],
      [Date.now(), 999_999],
      [2 ** 41, 123_456],
      [9_223_372_036_854, 775_807], // 2^63 - 1 ns
    ];
    let seed = 42;
    const rnd = (n: number): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 500; i++) cases.push([rnd(2 ** 31) * 4096 + rnd(4096), rnd(1_000_000)]);
    for (const [ms, sub] of cases) {
      const ts = BigInt(ms) * 1_000_000n + BigInt(sub);
      const bytes = encodeMsgProto(7, "c", "", enc.encode("d"), ms, sub);
      const ref = Buffer.from(
        encode(MsgProtoSchema, {
          sequence: 7n,
          subject: "c",
          data: enc.encode("d"),
          timestamp: ts,
        }),
      );
      expect(bytes.toString("hex"), `${ms} ms + ${sub} ns`).toBe(ref.toString("hex"));
      expect(readMsgHeader(bytes).timestamp).toBe(ts);
    }
  });

  it("stored messages do not share bytes", () => {
    const a = encodeMsgProto(1, "c", "", enc.encode("aaaa"), 1, 1);
    const b = encodeMsgProto(2, "c", "", enc.encode("bbbb"), 1, 2);
    const before = Buffer.from(a);
    b.fill(0);
    expect(a).toEqual(before);
    const big = encodeMsgProto(3, "c", "", new Uint8Array(100_000).fill(9), 1, 3);
    expect(decode(MsgProtoSchema, big).data.length).toBe(100_000);
  });

  it("PubAck encode", () => {
    expect(encodePubAck("guid")).toEqual(Buffer.from(encode(PubAckSchema, { guid: "guid" })));
    expect(encodePubAck("g", "stan: invalid publish request")).toEqual(
      Buffer.from(encode(PubAckSchema, { guid: "g", error: "stan: invalid publish request" })),
    );
    expect(encodePubAck("").length).toBe(0);
  });
});
