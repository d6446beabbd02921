/**
 * Hand-written protobuf codecs for the four messages on the hot path (PubMsg, PubAck, MsgProto,
 * Ack). They produce and accept exactly the proto3 encoding of `proto/stan/protocol.proto`
 * (checked against the generated protobuf-es code by the tests) without reflection and with one
 * allocation per message. Every other message goes through `@stan-ts/proto`.
 */
import { ErrorCode, StanProtocolError } from "./errors.js";
import { decodeText, isAscii, RecentText } from "./recent.js";

const utf8 = new TextEncoder();

export function varintSize(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  return 5;
}

function writeVarint(buf: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[pos++] = n;
  return pos;
}

function writeVarint64(buf: Uint8Array, pos: number, v: bigint): number {
  let n = BigInt.asUintN(64, v);
  while (n >= 0x80n) {
    buf[pos++] = Number(n & 0x7fn) | 0x80;
    n >>= 7n;
  }
  buf[pos++] = Number(n);
  return pos;
}

function varint64Size(v: bigint): number {
  let n = BigInt.asUintN(64, v);
  let size = 1;
  while (n >= 0x80n) {
    n >>= 7n;
    size++;
  }
  return size;
}

/** A length-delimited field whose bytes are known once (clientID, connID): tag + length + value. */
export function encodeConstField(field: number, value: Uint8Array | string): Uint8Array {
  const bytes = typeof value === "string" ? utf8.encode(value) : value;
  if (bytes.length === 0) return new Uint8Array(0);
  const out = new Uint8Array(1 + varintSize(bytes.length) + bytes.length);
  let pos = writeVarint(out, 0, (field << 3) | 2);
  pos = writeVarint(out, pos, bytes.length);
  out.set(bytes, pos);
  return out;
}

/**
 * Encodes a PubMsg. `clientIdField` and `connIdField` are pre-encoded with
 * {@link encodeConstField} (fields 1 and 6), since they never change on a connection.
 * guid and subject are ASCII in practice but any UTF-8 is handled.
 */
export function encodePubMsg(
  clientIdField: Uint8Array,
  guid: string,
  subject: string,
  data: Uint8Array,
  connIdField: Uint8Array,
): Uint8Array {
  const max =
    clientIdField.length +
    stringFieldSize(guid) +
    stringFieldSize(subject) +
    (data.length ? 1 + varintSize(data.length) + data.length : 0) +
    connIdField.length;
  const buf = alloc(max);
  buf.set(clientIdField, 0);
  let pos = clientIdField.length;
  pos = writeString(buf, pos, 2, guid);
  pos = writeString(buf, pos, 3, subject);
  if (data.length) {
    buf[pos++] = (5 << 3) | 2;
    pos = writeVarint(buf, pos, data.length);
    buf.set(data, pos);
    pos += data.length;
  }
  buf.set(connIdField, pos);
  pos += connIdField.length;
  return pos === max ? buf : buf.subarray(0, pos);
}

/** Slab for encoded messages: one ArrayBuffer per ~64 KiB of messages instead of one each. */
const SLAB_SIZE = 64 * 1024;
let slab = new Uint8Array(SLAB_SIZE);
let slabPos = 0;

/**
 * `size` bytes carved from the current slab (a region is never handed out twice, so a message
 * stays intact for as long as anyone holds it; a slab is freed once none of its views live).
 */
function alloc(size: number): Uint8Array {
  if (size > SLAB_SIZE / 8) return new Uint8Array(size);
  if (slabPos + size > SLAB_SIZE) {
    slab = new Uint8Array(SLAB_SIZE);
    slabPos = 0;
  }
  const out = slab.subarray(slabPos, slabPos + size);
  slabPos += (size + 7) & ~7;
  return out;
}

/** The exact size of a string field when ASCII (guids, nearly all subjects), else an upper bound. */
function stringFieldSize(s: string): number {
  if (s.length === 0) return 0;
  if (s.length < 128 && isAscii(s)) return 2 + s.length;
  return 1 + 5 + s.length * 3; // 3 bytes per UTF-16 unit covers any string
}

function writeString(buf: Uint8Array, pos: number, field: number, s: string): number {
  if (s.length === 0) return pos;
  buf[pos++] = (field << 3) | 2;
  if (s.length < 128 && isAscii(s)) {
    buf[pos++] = s.length;
    for (let i = 0; i < s.length; i++) buf[pos++] = s.charCodeAt(i);
    return pos;
  }
  const bytes = utf8.encode(s);
  pos = writeVarint(buf, pos, bytes.length);
  buf.set(bytes, pos);
  return pos + bytes.length;
}

/** Encodes an Ack{subject, sequence}. */
export function encodeAck(subject: string, sequence: bigint): Uint8Array {
  if (subject !== ackSubject) {
    // acks come in runs on one channel: its field is encoded once per run
    ackSubjectField = encodeConstField(1, subject);
    ackSubject = subject;
  }
  const field = ackSubjectField;
  const small = sequence > 0n && sequence <= MAX_SAFE;
  const n = small ? Number(sequence) : 0;
  const size =
    field.length + (sequence !== 0n ? 1 + (small ? safeVarintSize(n) : varint64Size(sequence)) : 0);
  const buf = alloc(size);
  buf.set(field, 0);
  let pos = field.length;
  if (sequence !== 0n) {
    buf[pos++] = 2 << 3;
    if (small) writeSafeVarint(buf, pos, n);
    else writeVarint64(buf, pos, sequence);
  }
  return buf;
}

let ackSubject = "";
let ackSubjectField: Uint8Array = new Uint8Array(0);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Varint size of an integer in [0, 2^53), without BigInt arithmetic. */
function safeVarintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    size++;
  }
  return size;
}

function writeSafeVarint(buf: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  buf[pos++] = n;
  return pos;
}

/** The last subject decoded from a MsgProto (deliveries of one channel come in runs). */
const lastSubject = new RecentText();

/** A decoded MsgProto. `data` is a view into the received buffer (no copy). */
export interface DecodedMsg {
  sequence: bigint;
  subject: string;
  reply: string;
  data: Uint8Array;
  timestamp: bigint;
  redelivered: boolean;
  redeliveryCount: number;
}

class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}

  fail(what: string): never {
    throw new StanProtocolError(
      ErrorCode.ProtocolError,
      `stan: malformed ${what} from the network`,
    );
  }

  varint32(what: string): number {
    // Reads up to 10 bytes, keeps the low 32 bits (as protobuf does for 32-bit fields).
    let result = 0;
    let shift = 0;
    const buf = this.buf;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= buf.length) this.fail(what);
      const b = buf[this.pos++] as number;
      if (shift < 32) result |= (b & 0x7f) << shift;
      if (b < 0x80) return result >>> 0;
      shift += 7;
    }
    return this.fail(what);
  }

  varint64(what: string): bigint {
    let lo = 0;
    let hi = 0;
    let shift = 0;
    const buf = this.buf;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= buf.length) this.fail(what);
      const b = buf[this.pos++] as number;
      if (shift < 28) lo |= (b & 0x7f) << shift;
      else if (shift === 28) {
        lo |= (b & 0x0f) << 28;
        hi |= (b & 0x7f) >>> 4;
      } else hi |= (b & 0x7f) << (shift - 32);
      if (b < 0x80) {
        if (hi === 0) return BigInt(lo >>> 0);
        return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
      }
      shift += 7;
    }
    return this.fail(what);
  }

  bytes(what: string): Uint8Array {
    const len = this.varint32(what);
    const end = this.pos + len;
    if (end > this.buf.length) this.fail(what);
    const out = this.buf.subarray(this.pos, end);
    this.pos = end;
    return out;
  }

  /** A string field that repeats from message to message, through `recent` (see recent.ts). */
  recentString(recent: RecentText, what: string): string {
    const len = this.varint32(what);
    const at = this.pos;
    const end = at + len;
    if (end > this.buf.length) this.fail(what);
    this.pos = end;
    return recent.get(this.buf, at, end, decodeText);
  }

  string(what: string): string {
    const b = this.bytes(what);
    return decodeText(b, 0, b.length);
  }

  skip(wireType: number, what: string): void {
    switch (wireType) {
      case 0:
        this.varint64(what);
        return;
      case 1:
        this.pos += 8;
        break;
      case 2:
        this.bytes(what);
        return;
      case 5:
        this.pos += 4;
        break;
      default:
        this.fail(what);
    }
    if (this.pos > this.buf.length) this.fail(what);
  }
}

const EMPTY = new Uint8Array(0);

/** Decodes a MsgProto; unknown fields are skipped. Throws {@link StanProtocolError}. */
export function decodeMsgProto(buf: Uint8Array): DecodedMsg {
  const r = new Reader(buf);
  const m: DecodedMsg = {
    sequence: 0n,
    subject: "",
    reply: "",
    data: EMPTY,
    timestamp: 0n,
    redelivered: false,
    redeliveryCount: 0,
  };
  while (r.pos < buf.length) {
    const tag = r.varint32("MsgProto");
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field === 1 && wt === 0) m.sequence = r.varint64("MsgProto");
    else if (field === 2 && wt === 2) m.subject = r.recentString(lastSubject, "MsgProto");
    else if (field === 3 && wt === 2) m.reply = r.string("MsgProto");
    else if (field === 4 && wt === 2) m.data = r.bytes("MsgProto");
    else if (field === 5 && wt === 0) m.timestamp = BigInt.asIntN(64, r.varint64("MsgProto"));
    else if (field === 6 && wt === 0) m.redelivered = r.varint32("MsgProto") !== 0;
    else if (field === 7 && wt === 0) m.redeliveryCount = r.varint32("MsgProto");
    else if (field === 0) r.fail("MsgProto");
    else r.skip(wt, "MsgProto");
  }
  return m;
}

/** Decodes a PubAck into `[guid, error]`; unknown fields are skipped. */
export function decodePubAck(buf: Uint8Array): [guid: string, error: string] {
  const r = new Reader(buf);
  let guid = "";
  let error = "";
  while (r.pos < buf.length) {
    const tag = r.varint32("PubAck");
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field === 1 && wt === 2) guid = r.string("PubAck");
    else if (field === 2 && wt === 2) error = r.string("PubAck");
    else if (field === 0) r.fail("PubAck");
    else r.skip(wt, "PubAck");
  }
  return [guid, error];
}
