/**
 * Publishing: `publish()`, `send()` (publishAsync) and `sendBatch()` over one window of
 * `maxPubAcksInflight`, the publishes awaiting their PubAck (`pending`), the PubAck inbox's
 * handler, and the re-send of what is unacknowledged after a heal. Its collaborators:
 * publish-window.ts, publish-batch.ts, ack-sweep.ts, outbox.ts (via the shared state).
 */

import { abortError, type CallOptions } from "../cancel.js";
import { decodePubAck, encodePubMsg, varintSize } from "../codec.js";
import {
  ErrorCode,
  Messages,
  StanArgumentError,
  StanConnectionError,
  StanProtocolError,
  StanServerError,
  StanTimeoutError,
} from "../errors.js";
import { nuid } from "../nuid.js";
import { GUID_LEN, PendingQueue } from "../pending.js";
import { isStatusMessage, type NatsMsgLike } from "../transport.js";
import { validateSubject, validateTimeout } from "../validate.js";
import { AckSweep } from "./ack-sweep.js";
import { finish, type PendingPub, PublishBatch } from "./publish-batch.js";
import { PublishWindow } from "./publish-window.js";
import type { SessionState } from "./state.js";
import type { BatchOutcome, SentPublish } from "./types.js";

// One executor for every publish's promise: it hands the resolvers over through these two
// variables (read right after `new Promise`, which runs it synchronously), so creating a
// promise allocates no closure.
let capturedResolve: ((guid: string) => void) | undefined;
let capturedReject: ((err: Error) => void) | undefined;
function captureResolvers(resolve: (guid: string) => void, reject: (err: Error) => void): void {
  capturedResolve = resolve;
  capturedReject = reject;
}

const EMPTY = new Uint8Array(0);

/** A guid's length, to size a message before its guid is drawn. */
const GUID_PROBE = "x".repeat(GUID_LEN);

/** @internal A session's publishing side (see the file's comment). */
export class Publisher {
  /** The inbox PubAcks arrive on, for the whole life of the session (heals included). */
  readonly ackInbox: string;
  private readonly pubOpts: { reply: string };
  private readonly pubSubjects = new Map<string, string>();
  /** Publishes awaiting their PubAck, in send order; their guids come from it. */
  readonly pending = new PendingQueue<PendingPub>();
  /** At most `maxPubAcksInflight` of them; later publishes wait for room. */
  readonly window: PublishWindow;
  /** Expires publishes whose PubAck is late. */
  private readonly sweep: AckSweep;

  constructor(private readonly s: SessionState) {
    this.ackInbox = `_STAN.acks.${nuid.next()}`;
    this.pubOpts = { reply: this.ackInbox };
    this.window = new PublishWindow(s.opts.maxPubAcksInflight, this.pending, () => s.checkUsable());
    this.sweep = new AckSweep(this.pending, (p) =>
      this.settle(p.guid, new StanTimeoutError(ErrorCode.PubAckTimeout, Messages.pubAckTimeout)),
    );
  }

  /** Forgets the full publish subjects (a new session may have a new prefix). */
  clearSubjects(): void {
    this.pubSubjects.clear();
  }

  private pubSubject(subject: string): string {
    let full = this.pubSubjects.get(subject);
    if (full === undefined) {
      validateSubject(subject);
      full = `${this.s.subjects.pubPrefix}.${subject}`;
      if (this.pubSubjects.size >= 4096) this.pubSubjects.clear();
      this.pubSubjects.set(subject, full);
    }
    return full;
  }

  /** See {@link Session.publish}. */
  publish(subject: string, data: Uint8Array, call?: CallOptions): Promise<string> {
    if (this.window.hasRoom()) {
      try {
        return this.sendNow(subject, data, call, this.pending.nextGuid(), false);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return this.send(subject, data, call).then((s) => s.acked);
  }

  /** See {@link Session.send}. */
  send(subject: string, data: Uint8Array, call?: CallOptions): Promise<SentPublish> {
    if (this.window.hasRoom()) {
      // the common case, without an async function's extra promise and state
      try {
        return Promise.resolve(this.sent(subject, data, call));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return this.sendWhenRoom(subject, data, call);
  }

  private async sendWhenRoom(
    subject: string,
    data: Uint8Array,
    call?: CallOptions,
  ): Promise<SentPublish> {
    const closed = this.s.checkUsable();
    if (closed) throw closed;
    this.pubSubject(subject);
    if (call?.timeout !== undefined) validateTimeout(call.timeout, "publish");
    // Refuse what can never be sent before taking a place in the queue.
    this.checkSize(
      encodePubMsg(this.s.clientIdField, GUID_PROBE, subject, data, this.s.connIdField),
      data,
    );
    await this.window.wait(call);
    this.window.claim();
    try {
      return this.sent(subject, data, call);
    } catch (err) {
      // The woken waiter failed (aborted after its wake, or refused): pass the wake on, or
      // every later publish would queue behind it forever.
      this.window.wake();
      throw err;
    }
  }

  private checkSize(bytes: Uint8Array, data: Uint8Array): void {
    if (bytes.length > this.s.maxPayload) {
      throw new StanArgumentError(
        ErrorCode.MaxPayloadExceeded,
        `stan: payload too large: ${data.length} bytes of data make a ${bytes.length}-byte message, over the NATS server's max_payload of ${this.s.maxPayload}`,
      );
    }
  }

  private sent(subject: string, data: Uint8Array, call: CallOptions | undefined): SentPublish {
    // Whoever awaits `acked` observes a failure; one who ignores it must not get an
    // unhandled rejection, so finish() marks it handled before it rejects.
    const guid = this.pending.nextGuid();
    return { guid, acked: this.sendNow(subject, data, call, guid, true) };
  }

  private sendNow(
    subject: string,
    data: Uint8Array,
    call: CallOptions | undefined,
    guid: string,
    pipelined: boolean,
  ): Promise<string> {
    const closed = this.s.checkUsable();
    if (closed) throw closed;
    if (call?.signal?.aborted) throw abortError(call.signal, "publish");
    const full = this.pubSubject(subject);
    const bytes = encodePubMsg(this.s.clientIdField, guid, subject, data, this.s.connIdField);
    this.checkSize(bytes, data);
    const custom = call?.timeout !== undefined;
    const timeout = custom ? validateTimeout(call?.timeout, "publish") : this.s.opts.pubAckTimeout;
    const deadline = Date.now() + timeout;
    const promise = new Promise<string>(captureResolvers);
    const entry: PendingPub = {
      guid,
      subject,
      data,
      resolve: capturedResolve,
      reject: capturedReject,
      deadline,
      // a pipelined publish's caller may ignore its promise: see finish()
      acked: pipelined ? promise : undefined,
      batch: undefined,
      index: 0,
      seq: 0,
    };
    this.track(entry, full, bytes, timeout, custom);
    const signal = call?.signal;
    if (signal) {
      const onAbort = () => this.settle(guid, abortError(signal, "publish"));
      signal.addEventListener("abort", onAbort, { once: true });
      promise.then(
        () => signal.removeEventListener("abort", onAbort),
        () => signal.removeEventListener("abort", onAbort),
      );
    }
    return promise;
  }

  /** Registers a publish as pending and sends it (or leaves it for the heal to send). */
  private track(
    entry: PendingPub,
    full: string,
    bytes: Uint8Array,
    timeout: number,
    custom: boolean,
  ): void {
    this.pending.add(entry);
    if (custom) this.sweep.customDeadlines++;
    this.sweep.start(timeout);
    // While healing, it waits in `pending` and is sent once the session is back. A publish
    // alone goes out at once (lowest latency); one among others in flight joins the outbox.
    if (this.s.state === "open") {
      if (this.s.outbox.size === 0 && this.pending.size === 1) {
        try {
          this.s.nc.publish(full, bytes, this.pubOpts);
        } catch (err) {
          // The NATS connection refused it (closing, or closed under a borrowed connection):
          // nothing was sent, so take the entry back rather than leave it to reject unheard.
          this.pending.remove(entry);
          if (custom) this.sweep.customDeadlines--;
          throw new StanConnectionError(
            ErrorCode.ConnectionClosed,
            `stan: publish failed, the NATS connection refused it: ${(err as Error).message}`,
            { cause: err },
          );
        }
      } else this.s.outbox.enqueue(full, bytes, this.pubOpts, entry.guid);
    }
  }

  /** See {@link Session.sendBatch}. */
  async sendBatch(
    subject: string,
    datas: readonly Uint8Array[],
    call?: CallOptions,
  ): Promise<BatchOutcome> {
    const closed = this.s.checkUsable();
    if (closed) throw closed;
    if (call?.signal?.aborted) throw abortError(call.signal, "publish");
    const full = this.pubSubject(subject);
    const n = datas.length;
    if (n === 0) return { guids: [], failures: [] };
    // The encoding around the data is the same for every message: learn it once.
    const probe = encodePubMsg(
      this.s.clientIdField,
      nuid.next(),
      subject,
      EMPTY,
      this.s.connIdField,
    );
    for (let i = 0; i < n; i++) {
      const len = (datas[i] as Uint8Array).length;
      const size = probe.length + (len > 0 ? 1 + varintSize(len) + len : 0);
      if (size > this.s.maxPayload) {
        throw new StanArgumentError(
          ErrorCode.MaxPayloadExceeded,
          `stan: payload too large: message ${i} of the batch has ${len} bytes of data, making a ${size}-byte message, over the NATS server's max_payload of ${this.s.maxPayload}; nothing was sent`,
        );
      }
    }
    const batch = new PublishBatch(n);
    const custom = call?.timeout !== undefined;
    const timeout = custom ? validateTimeout(call?.timeout, "publish") : this.s.opts.pubAckTimeout;
    let sent = 0;
    const signal = call?.signal;
    const onAbort = () => {
      const error = abortError(signal as AbortSignal, "publish");
      for (let i = 0; i < sent; i++) this.settle(batch.guids[i] as string, error);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      while (sent < n) {
        if (!this.window.hasRoom()) {
          await this.window.wait(call);
          this.window.claim();
        }
        // As many as the window allows, in this turn.
        const deadline = Date.now() + timeout;
        do {
          const guid = this.pending.nextGuid();
          const data = datas[sent] as Uint8Array;
          batch.guids[sent] = guid;
          const entry: PendingPub = {
            guid,
            subject,
            data,
            resolve: undefined,
            reject: undefined,
            deadline,
            acked: undefined,
            batch,
            index: sent,
            seq: 0,
          };
          const bytes = encodePubMsg(this.s.clientIdField, guid, subject, data, this.s.connIdField);
          this.track(entry, full, bytes, timeout, custom);
          sent++;
        } while (sent < n && this.window.hasRoom());
      }
    } catch (err) {
      for (let i = sent; i < n; i++) batch.settled(i, err as Error); // never sent
      this.window.wake(); // a slot this batch was woken for must not stay unclaimed
    }
    const outcome = await batch.done;
    signal?.removeEventListener("abort", onAbort);
    return outcome;
  }

  /** Handles a message on the PubAck inbox. */
  onPubAck(msg: NatsMsgLike): void {
    // nats-server's "no responders" for a publish that reached no streaming server (it is down):
    // not an ack of anything; that publish settles by its ack timeout or is re-sent by a heal.
    if (isStatusMessage(msg)) return;
    const data = msg.data;
    if (data.length === 2 + GUID_LEN && data[0] === 0x0a && data[1] === GUID_LEN) {
      // The usual PubAck: the guid alone (field 1, 22 bytes). Found from the bytes, no string.
      const p = this.pending.findBytes(data, 2);
      if (p) this.settleEntry(p, undefined);
      return;
    }
    let guid: string;
    let error: string;
    try {
      [guid, error] = decodePubAck(msg.data);
    } catch (err) {
      this.s.reportProtocolError(err);
      return;
    }
    if (!guid) {
      // the server echoes the guid of every publish: a PubAck without one answers nothing
      this.s.reportProtocolError(
        new StanProtocolError(ErrorCode.ProtocolError, "stan: malformed PubAck: no guid"),
      );
      return;
    }
    this.settle(guid, error ? new StanServerError(ErrorCode.ServerError, error) : undefined);
  }

  /** Settles the publish `guid` (if still pending): stored, or failed with `error`. */
  settle(guid: string, error?: Error): void {
    const p = this.pending.find(guid);
    if (p) this.settleEntry(p, error);
  }

  private settleEntry(p: PendingPub, error: Error | undefined): void {
    this.pending.remove(p);
    finish(p, error);
    if (this.window.waiting) this.window.wake();
    if (this.pending.size === 0) this.sweep.stop();
  }

  /**
   * After a heal, synchronously: re-sends every unacknowledged publish under the new connId,
   * in order; returns how many. Throws when NATS refuses one (it is closing).
   */
  resendPending(): number {
    let count = 0;
    for (const p of this.pending) {
      this.s.nc.publish(
        this.pubSubject(p.subject),
        encodePubMsg(this.s.clientIdField, p.guid, p.subject, p.data, this.s.connIdField),
        this.pubOpts,
      );
      count++;
    }
    return count;
  }

  /** The session ended: every pending publish fails with `error`, every waiter is woken. */
  failAll(error: StanConnectionError): void {
    this.sweep.stop();
    const all = [...this.pending];
    this.pending.clear();
    for (const p of all) finish(p, error);
    this.window.wakeAll();
  }
}
