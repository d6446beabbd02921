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
import {
  ErrorCode,
  FrameSubjectError,
  FrameWriter as Frames,
  isAscii,
  isFrameSubject,
  StanArgumentError,
} from "@stan-ts/core";
import type { NatsConnection } from "nats";
import { encodePubAck, varintSize, writeVarint } from "./codec.js";

/**
 * The longest inbox (in UTF-16 units) the server accepts from a client for deliveries and
 * heartbeats. Generated inboxes are about 30 characters; 1,024 units are at most 3 KB of
 * UTF-8, well inside nats-server's control line (see {@link MAX_FRAME_SUBJECT_BYTES}).
 */
export const MAX_INBOX_LENGTH = 1024;

/**
 * The longest subject (UTF-8 bytes) the frame writer publishes to: nats-server closes a
 * connection whose control line (`PUB <subject> <size>`) exceeds its max_control_line, 4,096
 * bytes by default. A reply subject always fits: it arrived in a longer line.
 */
export const MAX_FRAME_SUBJECT_BYTES = 4096 - "PUB  \r\n".length - 10;

/** Whether a subject a client handed the server can be published to: a frame subject, short enough. */
export function isClientInbox(subject: string): boolean {
  return subject.length <= MAX_INBOX_LENGTH && isFrameSubject(subject);
}

/** Thrown for a subject too long to publish to (nats-server would close the connection). */
export class SubjectTooLongError extends StanArgumentError {
  constructor(subject: string, limit: string) {
    super(
      ErrorCode.InvalidArgument,
      `invalid subject "${subject.slice(0, 40)}…" (${subject.length} characters): at most ${limit}, or nats-server closes the connection (max_control_line)`,
    );
  }
}

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
    if (subject.length > MAX_INBOX_LENGTH && Buffer.byteLength(subject) > MAX_FRAME_SUBJECT_BYTES) {
      throw new SubjectTooLongError(subject, `${MAX_FRAME_SUBJECT_BYTES} bytes`);
    }
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
