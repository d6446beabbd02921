import { create, type Message } from "@bufbuild/protobuf";
import type { GenMessage } from "@bufbuild/protobuf/codegenv2";
import { describe, expect, it } from "vitest";
import {
  AckSchema,
  CloseRequestSchema,
  CloseResponseSchema,
  ConnectRequestSchema,
  ConnectResponseSchema,
  decode,
  encode,
  MsgProtoSchema,
  PingResponseSchema,
  PingSchema,
  PubAckSchema,
  PubMsgSchema,
  StartPosition,
  SubscriptionRequestSchema,
  SubscriptionResponseSchema,
  UnsubscribeRequestSchema,
} from "../src/index.js";

/** Binds one schema, so a table can hold every message type. */
function emptyCase<T extends Message>(schema: GenMessage<T>) {
  return {
    name: schema.typeName,
    encodeEmpty: () => encode(schema, {}),
    decodeEmpty: () => decode(schema, new Uint8Array(0)),
    defaults: () => create(schema),
  };
}

const emptyCases = [
  emptyCase(PubMsgSchema),
  emptyCase(PubAckSchema),
  emptyCase(MsgProtoSchema),
  emptyCase(AckSchema),
  emptyCase(ConnectRequestSchema),
  emptyCase(ConnectResponseSchema),
  emptyCase(PingSchema),
  emptyCase(PingResponseSchema),
  emptyCase(SubscriptionRequestSchema),
  emptyCase(SubscriptionResponseSchema),
  emptyCase(UnsubscribeRequestSchema),
  emptyCase(CloseRequestSchema),
  emptyCase(CloseResponseSchema),
];

describe("encode / decode defaults", () => {
  it.each(emptyCases)(
    "$name: an empty message encodes to zero bytes and decodes back to all defaults",
    ({ encodeEmpty, decodeEmpty, defaults }) => {
      expect(encodeEmpty()).toEqual(new Uint8Array(0));
      expect(decodeEmpty()).toEqual(defaults());
    },
  );

  it("fields explicitly set to their defaults are not written (proto3)", () => {
    const bytes = encode(SubscriptionRequestSchema, {
      clientID: "",
      maxInFlight: 0,
      startPosition: StartPosition.NewOnly,
      startSequence: 0n,
      startTimeDelta: 0n,
    });
    expect(bytes).toEqual(new Uint8Array(0));
  });
});

describe("encode / decode values", () => {
  it("encodes to the hand-computed wire bytes", () => {
    // field 1 (LEN) "a", field 2 (VARINT) 300
    expect(encode(AckSchema, { subject: "a", sequence: 300n })).toEqual(
      new Uint8Array([0x0a, 0x01, 0x61, 0x10, 0xac, 0x02]),
    );
  });

  it("round-trips a value, keeping 64-bit integers exact", () => {
    const sequence = 2n ** 64n - 1n;
    const decoded = decode(AckSchema, encode(AckSchema, { subject: "orders", sequence }));
    expect(decoded.subject).toBe("orders");
    expect(decoded.sequence).toBe(sequence);
  });

  it("keeps unknown fields and writes them back", () => {
    const bytes = new Uint8Array([0x0a, 0x01, 0x61, 0x18, 0x07]); // subject "a", field 3 = 7
    const decoded = decode(AckSchema, bytes);
    expect(decoded.subject).toBe("a");
    expect(decoded.$unknown?.map((field) => field.no)).toEqual([3]);
    expect(encode(AckSchema, decoded)).toEqual(bytes);
  });
});

describe("decode of invalid bytes", () => {
  const pubMsg = encode(PubMsgSchema, { guid: "g", data: new Uint8Array(10) });
  const ack = encode(AckSchema, { sequence: 2n ** 64n - 1n }); // 0x10 + a 10-byte varint

  it.each([
    ["a length-delimited field cut short", () => decode(PubMsgSchema, pubMsg.subarray(0, -1))],
    ["a field with its tag only", () => decode(PubMsgSchema, pubMsg.subarray(0, 1))],
    ["a varint cut short", () => decode(AckSchema, ack.subarray(0, 5))],
  ])("throws on a truncated buffer: %s", (_label, decodeTruncated) => {
    expect(decodeTruncated).toThrow(/premature EOF/);
  });

  it("accepts a buffer cut exactly between two fields (valid protobuf)", () => {
    // guid "g" is 3 bytes: tag, length, "g"; what follows is the data field.
    expect(decode(PubMsgSchema, pubMsg.subarray(0, 3)).guid).toBe("g");
  });
});
