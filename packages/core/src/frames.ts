/**
 * Pre-framed PUB commands for a nats.js connection.
 *
 * `nc.publish()` of nats.js builds a header string per message, encodes it and queues
 * separate buffers that are copied together before the socket write: for a burst of small
 * messages that is most of what a publish costs. A FrameWriter writes the bytes NATS expects
 * (`PUB <subject> [<reply> ]<len>\r\n<payload>\r\n`) for many messages into one buffer and
 * hands them to the connection's protocol handler as one command, which nats.js queues and
 * writes exactly as it would the separate messages, in call order with everything else.
 *
 * This uses one method of nats.js's protocol handler (`sendCommand(bytes)`, present in
 * `nats` 2.x and `@nats-io/nats-core` 3.x) and one flag (`noMorePublishing`, set while
 * draining). {@link FrameWriter.for} checks both at runtime and returns undefined when they
 * are not there, and callers then use `nc.publish()`; a test pins the expectation for the
 * `nats` version this project depends on.
 *
 * @internal
 */

/** What a FrameWriter uses of a nats.js protocol handler. */
interface ProtocolLike {
  sendCommand(cmd: Uint8Array): void;
  noMorePublishing: boolean;
}

import { ErrorCode, StanArgumentError } from "./errors.js";

const CHUNK = 64 * 1024;

/**
 * True when `s` can stand as a subject (or reply) in a PUB frame: non-empty, and no space,
 * tab, CR, LF or other control character, any of which would split or end the frame.
 */
export function isFrameSubject(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) return false;
  }
  return true;
}

/** Thrown by {@link FrameWriter.begin} for a subject or reply that would corrupt the frame. */
export class FrameSubjectError extends StanArgumentError {
  constructor(what: string, value: string) {
    super(
      ErrorCode.InvalidArgument,
      `invalid ${what} ${JSON.stringify(value)}: a PUB ${what} must be non-empty and hold no whitespace or control characters`,
    );
  }
}
const utf8 = new TextEncoder();

/** Builds PUB frames into a buffer and hands them to a nats.js connection in one command. */
export class FrameWriter {
  /** The current chunk; bytes before `start` were handed to the connection and stay as they are. */
  buf = new Uint8Array(CHUNK);
  private start = 0;
  pos = 0;
  private lastSubject = "";
  private lastReply = "";
  private lastHeader: Uint8Array = utf8.encode("PUB  ");

  private constructor(
    private readonly proto: ProtocolLike,
    private readonly isClosed: () => boolean,
  ) {}

  /** A writer for `nc`, or undefined when `nc` is not a nats.js connection with the expected internals. */
  static for(nc: object & { isClosed(): boolean }): FrameWriter | undefined {
    const p = (nc as { protocol?: Partial<ProtocolLike> }).protocol;
    if (!p || typeof p.sendCommand !== "function" || typeof p.noMorePublishing !== "boolean") {
      return undefined;
    }
    return new FrameWriter(p as ProtocolLike, () => nc.isClosed());
  }

  /** False while the connection drains or once it is closed: `nc.publish()` then throws, and should. */
  get usable(): boolean {
    return !this.proto.noMorePublishing && !this.isClosed();
  }

  /** Frames not handed over yet. */
  get pendingBytes(): number {
    return this.pos - this.start;
  }

  /** Appends one PUB frame. The subject must be non-empty. */
  publish(subject: string, reply: string, data: Uint8Array): void {
    const at = this.begin(subject, reply, data.length);
    this.buf.set(data, at);
    this.pos = at + data.length;
    this.end();
  }

  /**
   * Writes a frame header for a payload of exactly `len` bytes and returns where in
   * {@link buf} the payload goes; the caller writes it, sets {@link pos} past it and calls
   * {@link end}.
   */
  begin(subject: string, reply: string, len: number): number {
    let header = this.lastHeader;
    if (subject !== this.lastSubject || reply !== this.lastReply) {
      if (!isFrameSubject(subject)) throw new FrameSubjectError("subject", subject);
      if (reply !== "" && !isFrameSubject(reply)) throw new FrameSubjectError("reply", reply);
      header = utf8.encode(reply ? `PUB ${subject} ${reply} ` : `PUB ${subject} `);
      this.lastSubject = subject;
      this.lastReply = reply;
      this.lastHeader = header;
    }
    const need = header.length + 10 + 2 + len + 2;
    if (this.pos + need > this.buf.length) {
      this.flush();
      this.buf = new Uint8Array(Math.max(CHUNK, need));
      this.start = 0;
      this.pos = 0;
    }
    const b = this.buf;
    b.set(header, this.pos);
    let p = this.pos + header.length;
    p = writeDecimal(b, p, len);
    b[p++] = 0x0d;
    b[p++] = 0x0a;
    this.pos = p;
    return p;
  }

  /** Closes the frame whose payload was just written. */
  end(): void {
    this.buf[this.pos++] = 0x0d;
    this.buf[this.pos++] = 0x0a;
  }

  /** Hands the frames written so far to the connection, as one command. */
  flush(): void {
    if (this.pos === this.start) return;
    const frames = this.buf.subarray(this.start, this.pos);
    this.start = this.pos;
    this.proto.sendCommand(frames);
  }

  /** Drops the frames not handed over yet. */
  discard(): void {
    this.pos = this.start;
  }
}

/** Writes a non-negative integer in decimal ASCII; returns the position after it. */
function writeDecimal(b: Uint8Array, pos: number, n: number): number {
  let digits = 1;
  for (let x = n; x >= 10; x = Math.floor(x / 10)) digits++;
  let p = pos + digits;
  for (let x = n; p > pos; x = Math.floor(x / 10)) b[--p] = 48 + (x % 10);
  return pos + digits;
}
