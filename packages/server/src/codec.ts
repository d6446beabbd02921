/**
 * Hand-written protobuf codecs for the hot-path messages (PubMsg, MsgProto, PubAck, Ack).
 *
 * protobuf-es decodes through reflection, which dominates a publish-heavy profile; these
 * functions read and write the same proto3 wire format directly. `test/codec.test.ts`
 * checks them against protobuf-es in both directions.
 *
 * @internal
 */

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

/** Reads a varint as a JS number (exact up to 2^53); returns [value, nextPos] or throws. */
function readVarint(b: Uint8Array, pos: number): [number, number] {
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= b.length) throw new Error("truncated varint");
    const byte = b[pos++]!;
    result += (byte & 0x7f) * mul;
    if (byte < 0x80) return [result, pos];
    mul *= 128;
  }
  throw new Error("varint too long");
}

/** Skips a field of the given wire type; returns the next position. */
function skipField(b: Uint8Array, pos: number, wireType: number): number {
  switch (wireType) {
    case 0:
      return readVarint(b, pos)[1];
    case 1:
      pos += 8;
      break;
    case 2: {
      const [len, p] = readVarint(b, pos);
      pos = p + len;
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
    const [tag, p] = readVarint(buf, pos);
    pos = p;
    const field = Math.floor(tag / 8);
    const wt = tag & 7;
    if (wt === 2 && field >= 1 && field <= 6) {
      const [len, p2] = readVarint(buf, pos);
      const start = p2;
      const stop = start + len;
      if (stop > end) throw new Error("truncated field");
      switch (field) {
        case 1:
          out.clientID = buf.toString("utf8", start, stop);
          break;
        case 2:
          out.guid = buf.toString("utf8", start, stop);
          break;
        case 3:
          out.subject = buf.toString("utf8", start, stop);
          break;
        case 4:
          out.reply = buf.toString("utf8", start, stop);
          break;
        case 5:
          out.data = buf.subarray(start, stop);
          break;
        case 6:
          out.connID = buf.toString("latin1", start, stop);
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
    const [tag, p] = readVarint(buf, pos);
    pos = p;
    const field = Math.floor(tag / 8);
    const wt = tag & 7;
    if (field === 1 && wt === 2) {
      const [len, p2] = readVarint(buf, pos);
      if (p2 + len > buf.length) throw new Error("truncated field");
      out.subject = buf.toString("utf8", p2, p2 + len);
      pos = p2 + len;
    } else if (field === 2 && wt === 0) {
      const [v, p2] = readVarint(buf, pos);
      out.sequence = v;
      pos = p2;
    } else {
      if (field === 0) throw new Error("invalid field number 0");
      pos = skipField(buf, pos, wt);
    }
  }
  return out;
}

const EMPTY = new Uint8Array(0);

function varintSize(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

function writeVarint(out: Uint8Array, pos: number, v: number): number {
  while (v >= 128) {
    out[pos++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  out[pos++] = v;
  return pos;
}

/** Varint bytes of an int64 given as bigint (two's complement for negatives). */
function bigVarint(v: bigint): Uint8Array {
  const x = BigInt.asUintN(64, v);
  // split into 32-bit halves so the loop runs on numbers, not bigints
  let lo = Number(x & 0xffffffffn);
  let hi = Number(x >> 32n);
  const out = new Uint8Array(10);
  let n = 0;
  while (hi > 0 || lo >= 128) {
    out[n++] = (lo & 0x7f) | 0x80;
    lo = ((lo >>> 7) | ((hi & 0x7f) << 25)) >>> 0;
    hi >>>= 7;
  }
  out[n++] = lo;
  return out.subarray(0, n);
}

/**
 * Encodes a stored MsgProto (fields 1-5; redelivered fields are appended by
 * {@link withRedelivery}). Empty fields are omitted, as proto3 does.
 */
export function encodeMsgProto(
  sequence: number,
  subject: string,
  reply: string,
  data: Uint8Array,
  timestamp: bigint,
): Buffer {
  const subjLen = Buffer.byteLength(subject);
  const repLen = reply.length > 0 ? Buffer.byteLength(reply) : 0;
  const ts = timestamp !== 0n ? bigVarint(timestamp) : EMPTY;
  let size = 0;
  if (sequence !== 0) size += 1 + varintSize(sequence);
  if (subjLen > 0) size += 1 + varintSize(subjLen) + subjLen;
  if (repLen > 0) size += 1 + varintSize(repLen) + repLen;
  if (data.length > 0) size += 1 + varintSize(data.length) + data.length;
  if (ts.length > 0) size += 1 + ts.length;
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
  if (ts.length > 0) {
    out[pos++] = 0x28;
    out.set(ts, pos);
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
    const [tag, p] = readVarint(bytes, pos);
    pos = p;
    const field = Math.floor(tag / 8);
    const wt = tag & 7;
    if (field === 1 && wt === 0) {
      [sequence, pos] = readVarint(bytes, pos);
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
