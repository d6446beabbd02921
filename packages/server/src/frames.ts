/**
 * Batched PUB frames for the server's `send` connection: PubAcks and deliveries of one
 * event-loop turn go to the socket as one command, built by @stan-ts/core's FrameWriter
 * (which explains the fast path and the one piece of nats.js it relies on). The frames are
 * handed over in a microtask, the moment nats.js would have flushed them itself; the order of
 * the frames is the order of the calls. Whenever the fast path does not apply (a connection
 * without the expected internals, closed or draining, a payload over max_payload, an empty
 * subject) the frames so far are handed over and the call goes through `nc.publish()`, which
 * then behaves (and throws) exactly as before.
 *
 * @internal
 */
import { FrameSubjectError, FrameWriter as Frames, isAscii, isFrameSubject } from "@stan-ts/core";
import type { NatsConnection } from "nats";
import { encodePubAck, varintSize, writeVarint } from "./codec.js";

/** Batches the PUB frames of one event-loop turn on one connection (see the module doc). */
export class FrameWriter {
  private readonly frames: Frames | undefined;
  private scheduled = false;
  private readonly flushFn = (): void => {
    this.scheduled = false;
    this.frames?.flush();
  };

  constructor(private readonly nc: NatsConnection) {
    this.frames = Frames.for(nc);
  }

  /** Publishes `data` to `subject`; throws when nc.publish() would. */
  publish(subject: string, data: Uint8Array): void {
    const f = this.fast(subject, data.length);
    if (!f) {
      this.nc.publish(subject, data);
      return;
    }
    f.publish(subject, "", data);
    this.schedule();
  }

  /** Publishes a PubAck{guid} (no error) to `subject`, encoded in place. */
  pubAck(subject: string, guid: string): void {
    const ascii = isAscii(guid);
    const size = guid.length === 0 ? 0 : 1 + varintSize(guid.length) + guid.length;
    const f = ascii ? this.fast(subject, size) : undefined;
    if (!f) {
      this.nc.publish(subject, encodePubAck(guid));
      return;
    }
    let p = f.begin(subject, "", size);
    if (size > 0) {
      const b = f.buf;
      b[p++] = 0x0a;
      p = writeVarint(b, p, guid.length);
      for (let i = 0; i < guid.length; i++) b[p++] = guid.charCodeAt(i);
    }
    f.pos = p;
    f.end();
    this.schedule();
  }

  /** Hands the frames written so far to the connection (nats.js writes them in its next flush). */
  flush(): void {
    this.frames?.flush();
  }

  /** Drops frames not handed over yet (crash simulation). */
  discard(): void {
    this.frames?.discard();
  }

  /** The frame builder when a `len`-byte payload to `subject` can take the fast path. */
  private fast(subject: string, len: number): Frames | undefined {
    // nats.js writes any non-empty subject raw: whitespace or CRLF would corrupt the stream
    if (subject.length > 0 && !isFrameSubject(subject))
      throw new FrameSubjectError("subject", subject);
    const f = this.frames;
    if (!f) return undefined;
    const max = this.nc.info?.max_payload;
    if (!f.usable || subject.length === 0 || (max !== undefined && len > max)) {
      f.flush(); // keep the order: what was framed goes before the slow-path publish
      return undefined;
    }
    return f;
  }

  private schedule(): void {
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.flushFn);
    }
  }
}
