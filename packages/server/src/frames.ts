/**
 * Batched PUB frames for the server's `send` connection.
 *
 * `nc.publish()` of nats.js builds a header string per message, encodes it with a
 * TextEncoder and queues three buffers that are copied together before the socket write; on
 * the publish and replay paths that was about a third of the server's CPU. A FrameWriter
 * writes the same bytes (`PUB <subject> <len>\r\n<data>\r\n`) for all the messages of one
 * event-loop turn into one buffer and hands it to the connection once, as one command, in
 * the same microtask in which nats.js would have flushed them. The order of the frames is
 * the order of the calls. Whenever the fast path does not apply (closed or draining
 * connection, payload over max_payload, a nats.js without the expected internals) the
 * frames written so far are handed over and the call goes through `nc.publish()`, which
 * then behaves (and throws) exactly as before.
 *
 * @internal
 */
import type { NatsConnection } from "nats";
import { encodePubAck, varintSize, writeVarint } from "./codec.js";

/** What a FrameWriter uses of nats.js 2.29's protocol handler (checked at runtime). */
interface ProtocolLike {
  sendCommand(cmd: Uint8Array): void;
  noMorePublishing: boolean;
  info?: { max_payload?: number };
}

function protocolOf(nc: NatsConnection): ProtocolLike | undefined {
  const p = (nc as unknown as { protocol?: Partial<ProtocolLike> }).protocol;
  if (!p || typeof p.sendCommand !== "function" || typeof p.noMorePublishing !== "boolean") {
    return undefined;
  }
  return p as ProtocolLike;
}

const CHUNK = 64 * 1024;

/** Batches the PUB frames of one event-loop turn on one connection (see the module doc). */
export class FrameWriter {
  private readonly proto: ProtocolLike | undefined;
  private buf = Buffer.allocUnsafeSlow(CHUNK);
  /** Start of the frames not yet handed to the connection, and the write position. */
  private start = 0;
  private pos = 0;
  private scheduled = false;
  private lastSubject = "";
  private lastHeader: Buffer = Buffer.alloc(0);
  private readonly flushFn = (): void => {
    this.scheduled = false;
    this.flush();
  };

  constructor(private readonly nc: NatsConnection) {
    this.proto = protocolOf(nc);
  }

  /** Publishes `data` to `subject`; throws when nc.publish() would. */
  publish(subject: string, data: Uint8Array): void {
    if (!this.begin(subject, data.length, data.length)) {
      this.nc.publish(subject, data);
      return;
    }
    this.buf.set(data, this.pos);
    this.pos += data.length;
    this.end();
  }

  /** Publishes a PubAck{guid} (no error) to `subject`, encoded in place. */
  pubAck(subject: string, guid: string): void {
    const gLen = Buffer.byteLength(guid);
    const size = gLen === 0 ? 0 : 1 + varintSize(gLen) + gLen;
    if (!this.begin(subject, size, size)) {
      this.nc.publish(subject, encodePubAck(guid));
      return;
    }
    if (gLen > 0) {
      const b = this.buf;
      b[this.pos++] = 0x0a;
      this.pos = writeVarint(b, this.pos, gLen);
      this.pos += b.write(guid, this.pos, "utf8");
    }
    this.end();
  }

  /** Hands the frames written so far to the connection (nats.js writes them in its next flush). */
  flush(): void {
    if (this.pos === this.start || !this.proto) return;
    const frames = this.buf.subarray(this.start, this.pos);
    this.start = this.pos;
    this.proto.sendCommand(frames);
  }

  /** Drops frames not handed over yet (crash simulation). */
  discard(): void {
    this.start = this.pos;
  }

  /**
   * Writes the frame header, making room for `room` payload bytes; false when the fast path
   * does not apply (the frames so far are then handed over first, to keep the order).
   */
  private begin(subject: string, len: number, room: number): boolean {
    const p = this.proto;
    const max = p?.info?.max_payload;
    if (
      !p ||
      p.noMorePublishing ||
      subject.length === 0 ||
      this.nc.isClosed() ||
      (max !== undefined && len > max)
    ) {
      this.flush();
      return false;
    }
    let header = this.lastHeader;
    if (subject !== this.lastSubject) {
      header = Buffer.from(`PUB ${subject} `, "utf8");
      this.lastSubject = subject;
      this.lastHeader = header;
    }
    const need = header.length + 12 + room + 2;
    if (this.pos + need > this.buf.length) {
      this.flush();
      this.buf = Buffer.allocUnsafeSlow(Math.max(CHUNK, need));
      this.start = 0;
      this.pos = 0;
    }
    const b = this.buf;
    header.copy(b, this.pos);
    this.pos += header.length;
    this.pos += b.write(String(len), this.pos, "latin1");
    b[this.pos++] = 0x0d;
    b[this.pos++] = 0x0a;
    return true;
  }

  private end(): void {
    const b = this.buf;
    b[this.pos++] = 0x0d;
    b[this.pos++] = 0x0a;
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.flushFn);
    }
  }
}
