/**
 * Byte compatibility of our protobuf-es code with an independent implementation: the
 * google-protobuf (jspb) classes shipped by the official Node client, node-nats-streaming.
 *
 * Every message type is one row of {@link rows}. Each row lists the expected wire contract
 * (field number, type, jspb accessor name) and a few samples; the first sample sets every
 * field to a non-default value. For every sample we check:
 *
 * - ours → theirs: our bytes decode with their class to the same values;
 * - theirs → ours: their bytes decode with ours to the same values;
 * - both encoders write identical bytes (both emit known fields in field-number order);
 * - unknown fields (numbers 96–99, every wire type) are skipped by their decoder, and our
 *   decode → encode round trip keeps them byte for byte.
 *
 * 64-bit fields: their generated getters/setters use JS numbers, which are lossy past 2^53.
 * For an exact check we run their generated (de)serializer with google-protobuf's string
 * variants (`readUint64String`/`readInt64String`, `writeUint64String`/`writeInt64String`),
 * which is what jspb generates for `jstype = JS_STRING` fields. Field numbers and order
 * still come from their generated code; only the 64-bit value representation changes.
 */

import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { create, type DescField, type Message, ScalarType } from "@bufbuild/protobuf";
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
  StartPositionSchema,
  SubscriptionRequestSchema,
  SubscriptionResponseSchema,
  UnsubscribeRequestSchema,
} from "../src/index.js";

// ---------------------------------------------------------------------------------------
// Their side: a typed view of the jspb API we call.

interface JspbMessage {
  serializeBinary(): Uint8Array;
}

interface JspbClass {
  new (): JspbMessage;
  deserializeBinary(bytes: Uint8Array): JspbMessage;
  deserializeBinaryFromReader(message: JspbMessage, reader: BinaryReader): JspbMessage;
  serializeBinaryToWriter(message: JspbMessage, writer: BinaryWriter): void;
}

interface BinaryReader {
  readUint64String(): string;
  readInt64String(): string;
}

interface BinaryWriter {
  writeUint64(field: number, value: number): void;
  writeInt64(field: number, value: number): void;
  writeUint64String(field: number, value: string): void;
  writeInt64String(field: number, value: string): void;
  writeString(field: number, value: string): void;
  writeFixed32(field: number, value: number): void;
  writeDouble(field: number, value: number): void;
  getResultBuffer(): Uint8Array;
}

interface GoogleProtobuf {
  BinaryReader: new (bytes: Uint8Array) => BinaryReader;
  BinaryWriter: new () => BinaryWriter;
  Message: abstract new () => object;
}

function hasFunctions(value: unknown, names: readonly string[]): boolean {
  return (
    (typeof value === "object" || typeof value === "function") &&
    value !== null &&
    names.every((name) => typeof Reflect.get(value, name) === "function")
  );
}

function isGoogleProtobuf(value: unknown): value is GoogleProtobuf {
  return hasFunctions(value, ["BinaryReader", "BinaryWriter", "Message"]);
}

function isJspbClass(value: unknown): value is JspbClass {
  return (
    typeof value === "function" &&
    hasFunctions(value, [
      "deserializeBinary",
      "deserializeBinaryFromReader",
      "serializeBinaryToWriter",
    ])
  );
}

const require = createRequire(import.meta.url);
const gpModule: unknown = require("google-protobuf");
const theirModule: unknown = require("node-nats-streaming/lib/pb/protocol_pb.js");
if (!isGoogleProtobuf(gpModule)) throw new Error("google-protobuf does not look like jspb");
const gp = gpModule;
const theirPb: unknown =
  typeof theirModule === "object" && theirModule !== null ? Reflect.get(theirModule, "pb") : null;

function theirClass(name: string): JspbClass {
  const cls: unknown =
    typeof theirPb === "object" && theirPb !== null ? Reflect.get(theirPb, name) : undefined;
  if (!isJspbClass(cls)) throw new Error(`node-nats-streaming has no jspb class pb.${name}`);
  return cls;
}

/** Calls `target[method](...args)` on a jspb object, failing loudly if the method is missing. */
function call(target: object, method: string, ...args: unknown[]): unknown {
  const fn: unknown = Reflect.get(target, method);
  if (typeof fn !== "function") throw new Error(`jspb object has no method ${method}`);
  return Reflect.apply(fn, target, args);
}

/** A reader whose 64-bit reads return exact decimal strings (jspb's JS_STRING behaviour). */
function exactReader(bytes: Uint8Array): BinaryReader {
  const reader = new gp.BinaryReader(bytes);
  Object.defineProperty(reader, "readUint64", { value: () => reader.readUint64String() });
  Object.defineProperty(reader, "readInt64", { value: () => reader.readInt64String() });
  return reader;
}

/** A writer that writes 64-bit values given as decimal strings exactly (numbers as usual). */
function exactWriter(): BinaryWriter {
  const writer = new gp.BinaryWriter();
  const writeUint64 = writer.writeUint64.bind(writer);
  const writeInt64 = writer.writeInt64.bind(writer);
  Object.defineProperty(writer, "writeUint64", {
    value: (field: number, value: number | string) =>
      typeof value === "string"
        ? writer.writeUint64String(field, value)
        : writeUint64(field, value),
  });
  Object.defineProperty(writer, "writeInt64", {
    value: (field: number, value: number | string) =>
      typeof value === "string" ? writer.writeInt64String(field, value) : writeInt64(field, value),
  });
  return writer;
}

// ---------------------------------------------------------------------------------------
// The table.

type Kind = "string" | "bytes" | "bool" | "int32" | "uint32" | "int64" | "uint64" | "enum";
type Value = string | Uint8Array | boolean | number | bigint;

/** Field number, wire type and jspb accessor suffix (`getClientId`, `setClientId`). */
type FieldSpec = readonly [no: number, kind: Kind, jspb: string];

/** A message value with every field present (the compiler rejects a missing one). */
type Full<T extends Message> = Omit<T, "$typeName" | "$unknown">;

interface Field {
  key: string;
  no: number;
  kind: Kind;
  jspb: string;
}

type Plain = Readonly<Record<string, Value>>;

interface Row {
  name: string;
  theirs: JspbClass;
  fields: readonly Field[];
  samples: readonly (readonly [label: string, value: Plain])[];
  ours: {
    fieldContract(): { key: string; no: number; kind: string; jspb: string }[];
    encode(value: Plain): Uint8Array;
    decode(bytes: Uint8Array): {
      values: Plain;
      unknownFieldNumbers: number[];
      reencoded: Uint8Array;
    };
  };
}

function isValue(value: unknown): value is Value {
  return (
    typeof value === "string" ||
    typeof value === "boolean" ||
    typeof value === "number" ||
    typeof value === "bigint" ||
    value instanceof Uint8Array
  );
}

function pick(source: object, fields: readonly Field[]): Plain {
  const out: Record<string, Value> = {};
  for (const { key } of fields) {
    const value: unknown = Reflect.get(source, key);
    if (!isValue(value)) throw new Error(`field ${key} holds an unexpected ${typeof value}`);
    out[key] = value;
  }
  return out;
}

const scalarKinds: ReadonlyMap<ScalarType, Kind> = new Map([
  [ScalarType.STRING, "string"],
  [ScalarType.BYTES, "bytes"],
  [ScalarType.BOOL, "bool"],
  [ScalarType.INT32, "int32"],
  [ScalarType.UINT32, "uint32"],
  [ScalarType.INT64, "int64"],
  [ScalarType.UINT64, "uint64"],
]);

function kindOf(field: DescField): string {
  if (field.fieldKind === "enum") return "enum";
  if (field.fieldKind === "scalar")
    return scalarKinds.get(field.scalar) ?? `scalar ${field.scalar}`;
  return field.fieldKind;
}

function row<T extends Message>(
  schema: GenMessage<T>,
  spec: { readonly [K in keyof Full<T>]: FieldSpec },
  full: Full<T>,
  variants: Readonly<Record<string, Partial<Full<T>>>> = {},
): Row {
  const name = schema.typeName.replace(/^pb\./, "");
  const fields = Object.entries<FieldSpec>(spec).map(([key, [no, kind, jspb]]) => ({
    key,
    no,
    kind,
    jspb,
  }));
  const samples: [string, Plain][] = [["every field set", pick(full, fields)]];
  for (const [label, patch] of Object.entries(variants)) {
    samples.push([label, pick({ ...full, ...patch }, fields)]);
  }
  return {
    name,
    theirs: theirClass(name),
    fields,
    samples,
    ours: {
      fieldContract: () =>
        schema.fields.map((f) => ({
          key: f.localName,
          no: f.number,
          kind: kindOf(f),
          jspb: fields.find((x) => x.key === f.localName)?.jspb ?? "<not in the contract>",
        })),
      encode: (value) => {
        const message = create(schema);
        for (const [key, v] of Object.entries(value)) {
          if (!fields.some((f) => f.key === key)) throw new Error(`${name} has no field ${key}`);
          Reflect.set(message, key, v);
        }
        return encode(schema, message);
      },
      decode: (bytes) => {
        const message = decode(schema, bytes);
        return {
          values: pick(message, fields),
          unknownFieldNumbers: (message.$unknown ?? []).map((u) => u.no),
          reencoded: encode(schema, message),
        };
      },
    },
  };
}

const U32_MAX = 2 ** 32 - 1;
const I32_MAX = 2 ** 31 - 1;
const I32_MIN = -(2 ** 31);
const U64_MAX = 2n ** 64n - 1n;
const I64_MAX = 2n ** 63n - 1n;
const I64_MIN = -(2n ** 63n);
const ABOVE_2_53 = 2n ** 53n + 1n; // the first integer a double cannot hold

const text = "orders.日本語.🚀✨ — Ünïcödé 𝄞";
const mib = Uint8Array.from({ length: 1024 * 1024 }, (_, i) => (i * 31 + 7) & 0xff);
const sha = Uint8Array.from({ length: 32 }, (_, i) => 255 - i);
const connID = new TextEncoder().encode("NUID-0123456789ABCDEFGHIJ");
const empty = new Uint8Array(0);

const rows: readonly Row[] = [
  row(
    PubMsgSchema,
    {
      clientID: [1, "string", "ClientId"],
      guid: [2, "string", "Guid"],
      subject: [3, "string", "Subject"],
      reply: [4, "string", "Reply"],
      data: [5, "bytes", "Data"],
      connID: [6, "bytes", "ConnId"],
      sha256: [10, "bytes", "Sha256"],
    },
    {
      clientID: "client-🚀",
      guid: "guid-日本",
      subject: text,
      reply: "_INBOX.返信",
      data: mib,
      connID,
      sha256: sha,
    },
    {
      "empty bytes": { data: empty, connID: empty, sha256: empty },
      "one byte": { data: sha.subarray(0, 1) },
    },
  ),
  row(
    PubAckSchema,
    { guid: [1, "string", "Guid"], error: [2, "string", "Error"] },
    { guid: "guid-🚀", error: "stan: エラー ❌" },
  ),
  row(
    MsgProtoSchema,
    {
      sequence: [1, "uint64", "Sequence"],
      subject: [2, "string", "Subject"],
      reply: [3, "string", "Reply"],
      data: [4, "bytes", "Data"],
      timestamp: [5, "int64", "Timestamp"],
      redelivered: [6, "bool", "Redelivered"],
      redeliveryCount: [7, "uint32", "RedeliveryCount"],
      CRC32: [10, "uint32", "Crc32"],
    },
    {
      sequence: U64_MAX,
      subject: text,
      reply: "reply-✉️",
      data: mib,
      timestamp: I64_MAX,
      redelivered: true,
      redeliveryCount: U32_MAX,
      CRC32: U32_MAX,
    },
    {
      "min int64 timestamp": { timestamp: I64_MIN, sequence: ABOVE_2_53 },
      "negative timestamp, empty data": { timestamp: -1n, data: empty },
      "realistic values": {
        sequence: 42n,
        timestamp: 1_700_000_000_123_456_789n,
        redeliveryCount: 3,
        CRC32: 0x8badf00d,
      },
    },
  ),
  row(
    AckSchema,
    { subject: [1, "string", "Subject"], sequence: [2, "uint64", "Sequence"] },
    { subject: text, sequence: U64_MAX },
    {
      "sequence 2^53+1": { sequence: ABOVE_2_53 },
      "sequence 2^63": { sequence: 2n ** 63n },
      "sequence 1": { sequence: 1n },
    },
  ),
  row(
    ConnectRequestSchema,
    {
      clientID: [1, "string", "ClientId"],
      heartbeatInbox: [2, "string", "HeartbeatInbox"],
      protocol: [3, "int32", "Protocol"],
      connID: [4, "bytes", "ConnId"],
      pingInterval: [5, "int32", "PingInterval"],
      pingMaxOut: [6, "int32", "PingMaxOut"],
    },
    {
      clientID: "client-日本",
      heartbeatInbox: "_INBOX.💓",
      protocol: I32_MAX,
      connID: mib,
      pingInterval: I32_MAX,
      pingMaxOut: I32_MAX,
    },
    {
      "min int32 (10-byte varints)": { protocol: I32_MIN, pingInterval: -1, pingMaxOut: I32_MIN },
      "empty connID": { connID: empty, protocol: 1, pingInterval: 5, pingMaxOut: 88 },
    },
  ),
  row(
    ConnectResponseSchema,
    {
      pubPrefix: [1, "string", "PubPrefix"],
      subRequests: [2, "string", "SubRequests"],
      unsubRequests: [3, "string", "UnsubRequests"],
      closeRequests: [4, "string", "CloseRequests"],
      error: [5, "string", "Error"],
      subCloseRequests: [6, "string", "SubCloseRequests"],
      pingRequests: [7, "string", "PingRequests"],
      pingInterval: [8, "int32", "PingInterval"],
      pingMaxOut: [9, "int32", "PingMaxOut"],
      protocol: [10, "int32", "Protocol"],
      publicKey: [100, "string", "PublicKey"],
    },
    {
      pubPrefix: "_STAN.pub.🚀",
      subRequests: "_STAN.sub.日本",
      unsubRequests: "_STAN.unsub.한국",
      closeRequests: "_STAN.close.中文",
      error: "stan: ошибка ❌",
      subCloseRequests: "_STAN.subclose.✨",
      pingRequests: "_STAN.ping.🏓",
      pingInterval: I32_MAX,
      pingMaxOut: I32_MAX,
      protocol: I32_MAX,
      publicKey: "🔑".repeat(1000),
    },
    { "min int32": { pingInterval: I32_MIN, pingMaxOut: -1, protocol: I32_MIN } },
  ),
  row(
    PingSchema,
    { connID: [1, "bytes", "ConnId"] },
    { connID: mib },
    { "small connID": { connID } },
  ),
  row(
    PingResponseSchema,
    { error: [1, "string", "Error"] },
    { error: "client has been replaced 🔁" },
  ),
  row(
    SubscriptionRequestSchema,
    {
      clientID: [1, "string", "ClientId"],
      subject: [2, "string", "Subject"],
      qGroup: [3, "string", "QGroup"],
      inbox: [4, "string", "Inbox"],
      maxInFlight: [5, "int32", "MaxInFlight"],
      ackWaitInSecs: [6, "int32", "AckWaitInSecs"],
      durableName: [7, "string", "DurableName"],
      startPosition: [10, "enum", "StartPosition"],
      startSequence: [11, "uint64", "StartSequence"],
      startTimeDelta: [12, "int64", "StartTimeDelta"],
    },
    {
      clientID: "client-🚀",
      subject: text,
      qGroup: "グループ",
      inbox: "_INBOX.📬",
      maxInFlight: I32_MAX,
      ackWaitInSecs: I32_MAX,
      durableName: "durable-永続",
      startPosition: StartPosition.SequenceStart,
      startSequence: U64_MAX,
      startTimeDelta: I64_MAX,
    },
    {
      // Every StartPosition value, each with 64-bit values past 2^53.
      ...Object.fromEntries(
        StartPositionSchema.values.map((v) => [
          `startPosition ${v.name}`,
          { startPosition: v.number, startSequence: ABOVE_2_53, startTimeDelta: -ABOVE_2_53 },
        ]),
      ),
      "min int64 time delta": { startTimeDelta: I64_MIN, maxInFlight: I32_MIN, ackWaitInSecs: -1 },
      "negative time delta (in the future)": { startTimeDelta: -30_000_000_000n },
    },
  ),
  row(
    SubscriptionResponseSchema,
    { ackInbox: [2, "string", "AckInbox"], error: [3, "string", "Error"] },
    { ackInbox: "_INBOX.ack.✅", error: "stan: 無効 ❌" },
  ),
  row(
    UnsubscribeRequestSchema,
    {
      clientID: [1, "string", "ClientId"],
      subject: [2, "string", "Subject"],
      inbox: [3, "string", "Inbox"],
      durableName: [4, "string", "DurableName"],
    },
    { clientID: "client-🚀", subject: text, inbox: "_INBOX.ack.日本", durableName: "durable-✨" },
  ),
  row(CloseRequestSchema, { clientID: [1, "string", "ClientId"] }, { clientID: "client-日本-🚀" }),
  row(CloseResponseSchema, { error: [1, "string", "Error"] }, { error: "stan: 关闭 ❌" }),
];

// ---------------------------------------------------------------------------------------
// Conversions between plain values and their jspb representation.

const is64 = (kind: Kind) => kind === "int64" || kind === "uint64";

/** The value their setter receives: 64-bit values as numbers when exact, else as strings. */
function toJspb(value: Value): unknown {
  if (typeof value !== "bigint") return value;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : value.toString();
}

function theirEncode(r: Row, value: Plain): Uint8Array {
  const message = new r.theirs();
  for (const field of r.fields) {
    const v = value[field.key];
    if (v === undefined) throw new Error(`sample lacks ${field.key}`);
    call(message, `set${field.jspb}`, toJspb(v));
  }
  const writer = exactWriter();
  r.theirs.serializeBinaryToWriter(message, writer);
  return writer.getResultBuffer();
}

function readTheirs(r: Row, message: JspbMessage, exact: boolean): Plain {
  const out: Record<string, Value> = {};
  for (const field of r.fields) {
    const getter = field.kind === "bytes" ? `get${field.jspb}_asU8` : `get${field.jspb}`;
    const value: unknown = call(message, getter);
    if (is64(field.kind) && exact) {
      if (typeof value !== "string" && typeof value !== "number") {
        throw new Error(`${field.key}: expected a string or number, got ${typeof value}`);
      }
      out[field.key] = BigInt(value);
    } else if (!isValue(value)) {
      throw new Error(`${field.key}: unexpected ${typeof value}`);
    } else {
      out[field.key] = value;
    }
  }
  return out;
}

/** Their generated decoder, with exact 64-bit reads. */
function theirDecodeExact(r: Row, bytes: Uint8Array): Plain {
  const message = new r.theirs();
  r.theirs.deserializeBinaryFromReader(message, exactReader(bytes));
  return readTheirs(r, message, true);
}

/** Their generated decoder exactly as node-nats-streaming uses it (64-bit → JS number). */
function theirDecodeStock(r: Row, bytes: Uint8Array): Plain {
  return readTheirs(r, r.theirs.deserializeBinary(bytes), false);
}

/** What their stock getters return for a value: 64-bit values rounded to the nearest double. */
function asStockGetter(field: Field, value: Value): Value {
  return typeof value === "bigint" && is64(field.kind) ? Number(value) : value;
}

/**
 * Bytes as hex, or for long ones (1 MiB samples) length plus SHA-256: comparing those is exact
 * in practice, fast, and keeps failure diffs readable. Other values are returned unchanged.
 */
function show(value: Value): Exclude<Value, Uint8Array> {
  if (!(value instanceof Uint8Array)) return value;
  const buffer = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (buffer.length <= 512) return `${buffer.length} bytes: ${buffer.toString("hex")}`;
  return `${buffer.length} bytes, sha256 ${createHash("sha256").update(buffer).digest("hex")}`;
}

function expectSameFields(
  r: Row,
  actual: Plain,
  expected: Plain,
  map = (_f: Field, v: Value) => v,
) {
  for (const field of r.fields) {
    const want = expected[field.key];
    if (want === undefined) throw new Error(`sample lacks ${field.key}`);
    const got = actual[field.key];
    expect(got === undefined ? got : show(got), `${r.name}.${field.key}`).toEqual(
      show(map(field, want)),
    );
  }
}

/** Unknown fields of every wire type, written by their writer (varint, fixed64, fixed32, bytes). */
function unknownFields(): Uint8Array {
  const writer = new gp.BinaryWriter();
  writer.writeUint64String(96, U64_MAX.toString());
  writer.writeDouble(97, Math.PI);
  writer.writeFixed32(98, 0xdeadbeef);
  writer.writeString(99, "from a newer peer 🛰️");
  return writer.getResultBuffer();
}
const UNKNOWN_NUMBERS = [96, 97, 98, 99];

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Tests.

describe("setup, coverage and enums", () => {
  it("covers all 13 message types of the protocol", () => {
    expect(rows.map((r) => r.name).sort()).toEqual(
      [
        "Ack",
        "CloseRequest",
        "CloseResponse",
        "ConnectRequest",
        "ConnectResponse",
        "MsgProto",
        "Ping",
        "PingResponse",
        "PubAck",
        "PubMsg",
        "SubscriptionRequest",
        "SubscriptionResponse",
        "UnsubscribeRequest",
      ].sort(),
    );
  });

  it("uses the same google-protobuf instance as node-nats-streaming", () => {
    expect(new (theirClass("Ack"))()).toBeInstanceOf(gp.Message);
  });

  it("StartPosition has the same names and numbers on both sides", () => {
    const theirs: unknown =
      typeof theirPb === "object" && theirPb !== null
        ? Reflect.get(theirPb, "StartPosition")
        : null;
    const ours = Object.fromEntries(
      StartPositionSchema.values.map((v) => [
        v.name.replace(/(?<=[a-z])(?=[A-Z])/g, "_").toUpperCase(),
        v.number,
      ]),
    );
    expect(ours).toEqual({
      NEW_ONLY: 0,
      LAST_RECEIVED: 1,
      TIME_DELTA_START: 2,
      SEQUENCE_START: 3,
      FIRST: 4,
    });
    expect(theirs).toEqual(ours);
  });
});

describe.each(rows)("$name", (r) => {
  it("our schema has exactly the fields, numbers and types of the contract", () => {
    expect(r.ours.fieldContract()).toEqual(r.fields);
  });

  it("the first sample sets every field to a non-default value", () => {
    const [, full] = r.samples[0]!;
    expectSameFields(r, r.ours.decode(r.ours.encode(full)).values, full);
    for (const field of r.fields) {
      const one = r.ours.encode({ [field.key]: full[field.key]! });
      expect(one.length, `${r.name}.${field.key} is written`).toBeGreaterThan(0);
    }
  });

  describe.each(r.samples)("%s", (_label, value) => {
    it("ours → theirs: their decoder reads our bytes exactly", () => {
      const bytes = r.ours.encode(value);
      expectSameFields(r, theirDecodeExact(r, bytes), value);
      expectSameFields(r, theirDecodeStock(r, bytes), value, asStockGetter);
    });

    it("theirs → ours: our decoder reads their bytes exactly", () => {
      expectSameFields(r, r.ours.decode(theirEncode(r, value)).values, value);
    });

    it("both encoders write identical bytes", () => {
      expect(show(r.ours.encode(value))).toBe(show(theirEncode(r, value)));
    });

    it("unknown fields are skipped by their decoder and kept by our round trip", () => {
      const bytes = concat(theirEncode(r, value), unknownFields());

      expectSameFields(r, theirDecodeExact(r, bytes), value);
      expectSameFields(r, theirDecodeStock(r, bytes), value, asStockGetter);

      const ours = r.ours.decode(bytes);
      expectSameFields(r, ours.values, value);
      expect(ours.unknownFieldNumbers).toEqual(UNKNOWN_NUMBERS);
      expect(show(ours.reencoded)).toBe(show(bytes));
    });
  });
});
