/**
 * Hand-written protobuf codecs for the hot-path messages (PubMsg, MsgProto, PubAck, Ack).
 *
 * protobuf-es decodes through reflection, which dominates a publish-heavy profile; these
 * functions read and write the same proto3 wire format directly. `test/codec.test.ts`
 * checks them against protobuf-es in both directions.
 *
 * @internal
 */
import { decodeText, RecentText } from "@stan-ts/core";

/** A decoded PubMsg (only the fields the server uses). */
export interface WirePubMsg {
  clientID: string;
  guid: string;
  subject: string;
  reply: string;
  data: Uint8Array;
  /** connID bytes as a latin1 string (a cheap map key); empty when absent. */
  connID: string;
}

/** A decoded Ack. */
export interface WireAck {
  subject: string;
  sequence: number;
}

function toBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** A field's bytes as latin1 (a connID: opaque bytes used as a map key). */
function latin1(buf: Uint8Array, start: number, stop: number): string {
  return toBuffer(buf).toString("latin1", start, stop);
}

// the fields that repeat from message to message: a publisher's IDs, a channel
const recentClientId = new RecentText();
const recentSubject = new RecentText();
const recentConnId = new RecentText();
const recentAckSubject = new RecentText();

/** Position after the varint last read by {@link readVarint}. */
let vpos = 0;

/**
 * Reads a varint as a JS number (exact up to 2^53) and sets {@link vpos} to the next
 * position (no result array per field); throws when truncated or too long.
 */
function readVarint(b: Uint8Array, pos: number): number {
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= b.length) throw new Error("truncated varint");
    const byte = b[pos++]!;
    result += (byte & 0x7f) * mul;
    if (byte < 0x80) {
      vpos = pos;
      return result;
    }
    mul *= 128;
  }
  throw new Error("varint too long");
}

/** Skips a field of the given wire type; returns the next position. */
function skipField(b: Uint8Array, pos: number, wireType: number): number {
  switch (wireType) {
    case 0:
      readVarint(b, pos);
      return vpos;
    case 1:
      pos += 8;
      break;
    case 2: {
      const len = readVarint(b, pos);
      pos = vpos + len;
      break;
    }
    case 5:
      pos += 4;
      break;
    default:
      throw new Error(`unsupported wire type ${wireType}`);
  }
  if (pos > b.length) throw new Error("truncated field");
  return pos;
}

/**
 * Decodes a PubMsg. Throws on malformed input.
 */
export function decodePubMsg(bytes: Uint8Array): WirePubMsg {
  const buf = toBuffer(bytes);
  const out: WirePubMsg = {
    clientID: "",
    guid: "",
    subject: "",
    reply: "",
    data: EMPTY,
    connID: "",
  };
  let pos = 0;
  const end = buf.length;
  while (pos < end) {
    const tag = readVarint(buf, pos);
    pos = vpos;
    const field = Math.floor(tag / 8);
    const wt = tag & 7;
    if (wt === 2 && field >= 1 && field <= 6) {
      const len = readVarint(buf, pos);
      const start = vpos;
      const stop = start + len;
      if (stop > end) throw new Error("truncated field");
      switch (field) {
        case 1:
          out.clientID = recentClientId.get(buf, start, stop, decodeText);
          break;
        case 2:
          out.guid = decodeText(buf, start, stop);
          break;
        case 3:
          out.subject = recentSubject.get(buf, start, stop, decodeText);
          break;
        case 4:
          out.reply = decodeText(buf, start, stop);
          break;
        case 5:
          out.data = buf.subarray(start, stop);
          break;
        case 6:
          out.connID = recentConnId.get(buf, start, stop, latin1);
          break;
      }
      pos = stop;
    } else {
      if (field === 0) throw new Error("invalid field number 0");
      pos = skipField(buf, pos, wt);
    }
  }
  return out;
}

/** Decodes an Ack. Throws on malformed input. */
export function decodeAck(bytes: Uint8Array): WireAck {
  const buf = toBuffer(bytes);
  const out: WireAck = { subject: "", sequence: 0 };
  let pos = 0;
  while (pos < buf.length) {
    const tag = readVarint(buf, pos);
    pos = vpos;
    const field = Math.floor(tag / 8);
    const wt = tag & 7;
    if (field === 1 && wt === 2) {
      const len = readVarint(buf, pos);
      const p2 = vpos;
      if (p2 + len > buf.length) throw new Error("truncated field");
      out.subject = recentAckSubject.get(buf, p2, p2 + len, decodeText);
      pos = p2 + len;
    } else if (field === 2 && wt === 0) {
      out.sequence = readVarint(buf, pos);
      pos = vpos;
    } else {
      if (field === 0) throw new Error("invalid field number 0");
      pos = skipField(buf, pos, wt);
    }
  }
  return out;
}

const EMPTY = new Uint8Array(0);

/** Bytes of the varint of a non-negative integer. */
export function varintSize(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** Writes the varint of a non-negative integer; returns the next position. */
export function writeVarint(out: Uint8Array, pos: number, v: number): number {
  while (v >= 128) {
    out[pos++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  out[pos++] = v;
  return pos;
}

/** Varint of a server timestamp, split by {@link splitNs}: high and low 32 bits. */
let nsHi = 0;
let nsLo = 0;

/**
 * Splits `ms * 1e6 + sub` (ns since the epoch, below 2^63) into 32-bit halves in exact
 * number arithmetic (every intermediate stays below 2^53), so no BigInt is needed.
 */
function splitNs(ms: number, sub: number): void {
  const a = Math.floor(ms / 0x200000); // ms = a * 2^21 + b
  const b = ms - a * 0x200000;
  const x = a * 1_000_000; // ns = x * 2^21 + y
  const y = b * 1_000_000 + sub;
  const xh = Math.floor(x / 0x800); // x * 2^21 = xh * 2^32 + xl * 2^21
  const low = (x - xh * 0x800) * 0x200000 + y;
  const carry = Math.floor(low / 0x100000000);
  nsLo = low - carry * 0x100000000;
  nsHi = xh + carry;
}

/** Bytes of the varint split by {@link splitNs}. */
function nsVarintSize(): number {
  if (nsHi === 0) return varintSize(nsLo);
  return Math.ceil((32 + (32 - Math.clz32(nsHi))) / 7);
}

/** Writes the varint split by {@link splitNs}; returns the next position. */
function writeNsVarint(out: Uint8Array, pos: number): number {
  let lo = nsLo;
  let hi = nsHi;
  while (hi > 0 || lo >= 128) {
    out[pos++] = (lo & 0x7f) | 0x80;
    lo = ((lo >>> 7) | ((hi & 0x7f) << 25)) >>> 0;
    hi >>>= 7;
  }
  out[pos++] = lo;
  return pos;
}

/**
 * Encodes a stored MsgProto (fields 1-5; redelivered fields are appended by
 * {@link withRedelivery}). Empty fields are omitted, as proto3 does. The timestamp is
 * `ms * 1e6 + sub` ns since the epoch (`sub` in 0-999,999): no BigInt on the publish path.
 */
export function encodeMsgProto(
  sequence: number,
  subject: string,
  reply: string,
  data: Uint8Array,
  ms: number,
  sub: number,
): Buffer {
  const subjLen = Buffer.byteLength(subject);
  const repLen = reply.length > 0 ? Buffer.byteLength(reply) : 0;
  const hasTs = ms !== 0 || sub !== 0;
  let size = 0;
  if (sequence !== 0) size += 1 + varintSize(sequence);
  if (subjLen > 0) size += 1 + varintSize(subjLen) + subjLen;
  if (repLen > 0) size += 1 + varintSize(repLen) + repLen;
  if (data.length > 0) size += 1 + varintSize(data.length) + data.length;
  if (hasTs) {
    splitNs(ms, sub);
    size += 1 + nsVarintSize();
  }
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  if (sequence !== 0) {
    out[pos++] = 0x08;
    pos = writeVarint(out, pos, sequence);
  }
  if (subjLen > 0) {
    out[pos++] = 0x12;
    pos = writeVarint(out, pos, subjLen);
    pos += out.write(subject, pos, "utf8");
  }
  if (repLen > 0) {
    out[pos++] = 0x1a;
    pos = writeVarint(out, pos, repLen);
    pos += out.write(reply, pos, "utf8");
  }
  if (data.length > 0) {
    out[pos++] = 0x22;
    pos = writeVarint(out, pos, data.length);
    out.set(data, pos);
    pos += data.length;
  }
  if (hasTs) {
    out[pos++] = 0x28;
    writeNsVarint(out, pos);
  }
  return out;
}

/** Appends `redelivered=true` (field 6) and `redeliveryCount` (field 7) to an encoded MsgProto. */
export function withRedelivery(encoded: Uint8Array, count: number): Buffer {
  const extra = 2 + (count > 0 ? 1 + varintSize(count) : 0);
  const out = Buffer.allocUnsafe(encoded.length + extra);
  out.set(encoded, 0);
  let pos = encoded.length;
  out[pos++] = 0x30;
  out[pos++] = 1;
  if (count > 0) {
    out[pos++] = 0x38;
    pos = writeVarint(out, pos, count);
  }
  return out;
}

/** Reads sequence (field 1) and timestamp (field 5) back from an encoded MsgProto. */
export function readMsgHeader(bytes: Uint8Array): { sequence: number; timestamp: bigint } {
  let pos = 0;
  let sequence = 0;
  let timestamp = 0n;
  while (pos < bytes.length) {
    const tag = readVarint(bytes, pos);
    pos = vpos;
    const field = Math.floor(tag / 8);
    const wt = tag & 7;
    if (field === 1 && wt === 0) {
      sequence = readVarint(bytes, pos);
      pos = vpos;
    } else if (field === 5 && wt === 0) {
      let x = 0n;
      let shift = 0n;
      for (;;) {
        const byte = bytes[pos++];
        if (byte === undefined) throw new Error("truncated varint");
        x |= BigInt(byte & 0x7f) << shift;
        if (byte < 0x80) break;
        shift += 7n;
      }
      timestamp = BigInt.asIntN(64, x);
    } else {
      pos = skipField(bytes, pos, wt);
    }
  }
  return { sequence, timestamp };
}

/** Encodes a PubAck{guid, error}. */
export function encodePubAck(guid: string, error = ""): Buffer {
  const gLen = Buffer.byteLength(guid);
  const eLen = error.length > 0 ? Buffer.byteLength(error) : 0;
  let size = 0;
  if (gLen > 0) size += 1 + varintSize(gLen) + gLen;
  if (eLen > 0) size += 1 + varintSize(eLen) + eLen;
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  if (gLen > 0) {
    out[pos++] = 0x0a;
    pos = writeVarint(out, pos, gLen);
    pos += out.write(guid, pos, "utf8");
  }
  if (eLen > 0) {
    out[pos++] = 0x12;
    pos = writeVarint(out, pos, eLen);
    out.write(error, pos, "utf8");
  }
  return out;
}
