/** A subscription as the engine sees it: deliveries, acks, and where a heal resumes it. */

import { StartPosition } from "@stan-ts/proto";
import type { CallOptions } from "../cancel.js";
import { type DecodedMsg, decodeMsgProto } from "../codec.js";
import {
  ErrorCode,
  Messages,
  type StanError,
  StanProtocolError,
  StanSubscriptionError,
} from "../errors.js";
import type { NatsMsgLike, NatsSubscriptionLike } from "../transport.js";
import type { Session } from "./session.js";
import type { SubscribeParams, SubscriptionSink } from "./types.js";

const noop = () => {};
/**
 * Where a healed non-durable resumes when it has received something: the first message it
 * has not handed out (taken back from the sink) or, if it has handed out all, the last one
 * it received. It asks for that sequence and checks the server's first delivery against it.
 */
interface ResumeAnchor {
  sequence: bigint;
  timestamp: bigint;
  /** Taken back from the sink (rewind), from `sequence` on; the server sends them again. */
  held: DecodedMsg[];
}

/** A subscription as the engine sees it; survives a heal (re-created on the server). */
export class CoreSubscription {
  private natsSub: NatsSubscriptionLike | undefined;
  /** The current delivery inbox. */
  inbox = "";
  /** The server's ack inbox for this subscription. */
  ackInbox = "";
  /** @internal Its ack inbox belongs to a lost session (set at the loss, cleared once re-created). */
  stale = false;
  /** Highest sequence delivered so far (0n before the first). */
  lastSequence = 0n;
  /** The server timestamp of the message at `lastSequence`. */
  private lastTimestamp = 0n;
  /** When it was first created (ms since the epoch), for a new-only resume. */
  readonly createdAt = Date.now();
  /** A time start's absolute time (ns since the epoch, this clock): a heal asks for it again. */
  private readonly startTimeNs: bigint | undefined;
  /** Set from a non-durable's resume request until the server's first delivery is checked. */
  private anchor: ResumeAnchor | undefined;
  /** The server numbers the channel anew (memory store restart): resume from the first message. */
  private renumbered = false;
  /** Messages handed to the sink again after a resume (see `resumed`): never taken back. */
  private readonly foreign = new WeakSet<DecodedMsg>();
  /** Handed out already (from the held ones): the server's copies up to here are dropped. */
  private skipThrough = 0n;
  private heldTimer: ReturnType<typeof setTimeout> | undefined;
  /** Acks waiting for the new ack inbox (see {@link Session.sendAck}). */
  private queuedAcks: bigint[] = [];
  /**
   * A durable's sequences the application acked while it was being re-created: a redelivery
   * of one is dropped (and acked again). Bounded; an entry stays true for good (it was acked).
   */
  private readonly ackedAway = new Set<bigint>();
  private ended = false;

  /** @internal */
  constructor(
    private readonly session: Session,
    readonly params: SubscribeParams,
    private readonly sink: SubscriptionSink,
  ) {
    if (params.startPosition === StartPosition.TimeDeltaStart) {
      this.startTimeNs = BigInt(this.createdAt) * 1_000_000n - (params.startTimeDelta ?? 0n);
    }
  }

  /** @internal */
  attach(natsSub: NatsSubscriptionLike, inbox: string, ackInbox: string): void {
    this.natsSub = natsSub;
    this.inbox = inbox;
    this.ackInbox = ackInbox;
  }

  /** @internal Stops taking deliveries on the current inbox. */
  detach(): void {
    try {
      this.natsSub?.unsubscribe();
    } catch {
      // connection gone
    }
    this.natsSub = undefined;
  }

  /** @internal The session was lost: its registration and ack inbox are gone with it. */
  lost(): void {
    this.detach();
    this.stale = true;
    clearTimeout(this.heldTimer);
  }

  /**
   * @internal The resume request was answered. A stored anchor is sent at once; if nothing
   * comes within `ms` (a restarted memory store holds no such message, and nothing new was
   * published), the held messages are handed out now rather than wait for the next publish,
   * and copies of them the server may still send are dropped.
   */
  resumed(ms: number): void {
    const a = this.anchor;
    if (!a || a.held.length === 0) return;
    clearTimeout(this.heldTimer);
    this.heldTimer = setTimeout(() => {
      if (this.anchor !== a || this.ended || a.held.length === 0) return;
      const held = a.held;
      a.held = [];
      for (const h of held) {
        if (h.sequence > this.skipThrough) this.skipThrough = h.sequence;
        this.foreign.add(h);
        this.sink.deliver(h);
      }
    }, ms);
    (this.heldTimer as { unref?: () => void }).unref?.();
  }

  /** @internal */
  onMessage(msg: NatsMsgLike, from: NatsSubscriptionLike): void {
    if (this.ended || from !== this.natsSub) return;
    let decoded: DecodedMsg;
    try {
      decoded = decodeMsgProto(msg.data);
    } catch (err) {
      this.session.reportProtocolError(err);
      return; // malformed: dropped and counted; the server redelivers real messages
    }
    if (decoded.sequence === 0n) {
      // not a MsgProto (an empty payload or another message type): sequences start at 1
      this.session.reportProtocolError(
        new StanProtocolError(ErrorCode.ProtocolError, "stan: malformed MsgProto: no sequence"),
      );
      return;
    }
    if (this.anchor && !this.checkResume(decoded)) return;
    if (this.skipThrough > 0n) {
      if (decoded.sequence <= this.skipThrough) {
        this.ackQuietly(decoded.sequence); // a copy of one handed out when the anchor was late
        return;
      }
      this.skipThrough = 0n;
    }
    if (decoded.redelivered && this.ackedAway.delete(decoded.sequence)) {
      // acked by the application while the heal re-created it (the ack is on its way)
      this.ackQuietly(decoded.sequence);
      return;
    }
    if (decoded.sequence > this.lastSequence) {
      this.lastSequence = decoded.sequence;
      this.lastTimestamp = decoded.timestamp;
    }
    this.sink.deliver(decoded);
  }

  /**
   * The first delivery after a non-durable resumed at its anchor. The same sequence with the
   * same timestamp: the server kept the numbering (file store, or no restart). A lower
   * sequence, or the same one with another timestamp: the channel is numbered anew (a
   * memory store restarted), so resume from its first message. A higher one: the anchor was
   * removed by the channel's limits; what is held before it is not stored any more. Returns
   * whether `m` is to be delivered.
   */
  private checkResume(m: DecodedMsg): boolean {
    const a = this.anchor as ResumeAnchor;
    this.anchor = undefined;
    if (m.sequence === a.sequence && m.timestamp === a.timestamp) {
      if (a.held.length > 0) return true; // the first one not handed out yet: sent again
      this.ackQuietly(m.sequence); // handed out before the heal: the consumer has it
      return false;
    }
    if (m.sequence > a.sequence) {
      for (const h of a.held) if (h.sequence < m.sequence) this.sink.deliver(h);
      return true;
    }
    // Numbered anew. What was held came from the store that restarted: it exists nowhere
    // else now, so it is handed out (and never taken back again).
    this.skipThrough = 0n;
    this.lastSequence = 0n;
    this.lastTimestamp = 0n;
    for (const h of a.held) {
      this.foreign.add(h);
      this.sink.deliver(h);
    }
    if (m.sequence === 1n) return true; // the server starts at its first message anyway
    this.renumbered = true;
    void this.session.restartSubscription(this);
    return false;
  }

  /** Acks a message the consumer never sees (now, or once the new ack inbox is known). */
  private ackQuietly(sequence: bigint): void {
    try {
      this.session.sendAck(this, sequence, true);
    } catch {
      // the session ended: nothing to ack any more
    }
  }

  /** @internal Keeps an ack for the new ack inbox (see {@link Session.sendAck}). */
  queueAck(sequence: bigint, internal: boolean): void {
    if (internal) {
      this.queuedAcks.push(sequence);
    } else if (this.params.durableName) {
      const cap = this.params.maxInflight * 4;
      if (this.queuedAcks.length < cap) this.queuedAcks.push(sequence);
      if (this.ackedAway.size < cap) this.ackedAway.add(sequence);
    }
  }

  /** @internal The acks kept for the new ack inbox, once it is known. */
  takeQueuedAcks(): bigint[] {
    const acks = this.queuedAcks;
    this.queuedAcks = [];
    return acks;
  }

  /**
   * @internal After a heal: a durable (or durable queue) resumes where the server kept it;
   * a non-durable that received messages resumes at an anchor (see {@link ResumeAnchor} and
   * `checkResume`), a non-durable queue member after the last one it received; one that
   * received none asks for its original start again, with the original absolute time for a
   * time start, and from when it was created for a new-only, last-received or sequence
   * start (nothing stored meanwhile is skipped).
   */
  resubscribe(): Promise<void> {
    const request = this.requestResubscribe();
    const settled = request.then(noop, noop);
    this.resubscribing = settled;
    void settled.then(() => {
      if (this.resubscribing === settled) this.resubscribing = undefined;
    });
    return request;
  }

  /** @internal While a heal re-creates it: settles (never rejects) once it is done. */
  resubscribing: Promise<void> | undefined;

  private requestResubscribe(): Promise<void> {
    return this.session.requestSubscription(this, this.resumeParams());
  }

  private resumeParams(): SubscribeParams {
    const p = this.params;
    if (p.durableName) return p;
    // a non-durable's own acks were for the old registration (a queued user ack is never kept)
    this.queuedAcks = [];
    if (p.queue && this.lastSequence > 0n) {
      // A member of a non-durable group: when other members remain, the group keeps its own
      // position and hands this member what it pleases (redeliveries of another's included),
      // so there is nothing to check; when none remain, the group starts anew after `last`.
      return {
        ...p,
        startPosition: StartPosition.SequenceStart,
        startSequence: this.lastSequence + 1n,
      };
    }
    let held = this.anchor?.held ?? [];
    this.anchor = undefined;
    const taken = this.sink.rewind?.() ?? [];
    if (taken.length > 0) {
      const back = taken.filter((m) => this.foreign.has(m));
      for (const m of back) this.sink.deliver(m);
      held = held.concat(back.length > 0 ? taken.filter((m) => !this.foreign.has(m)) : taken);
    }
    const first = held[0];
    if (first) {
      this.anchor = { sequence: first.sequence, timestamp: first.timestamp, held };
    } else if (this.lastSequence > 0n) {
      this.anchor = { sequence: this.lastSequence, timestamp: this.lastTimestamp, held };
    }
    if (this.anchor) {
      return {
        ...p,
        startPosition: StartPosition.SequenceStart,
        startSequence: this.anchor.sequence,
      };
    }
    if (this.renumbered) return { ...p, startPosition: StartPosition.First };
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    switch (p.startPosition) {
      // Nothing was sent since it was made, so what the server stores from then on is what
      // it would have sent: for new-only; for last-received (the channel was empty); and for
      // a sequence (past the channel's last, the server started it after the last; a
      // sequence it had stored would have been sent at once, unless the session was lost
      // within that round trip). On a memory store that restarted, this is all it stores.
      case StartPosition.NewOnly:
      case StartPosition.LastReceived:
      case StartPosition.SequenceStart: {
        const since = BigInt(this.createdAt) * 1_000_000n;
        const delta = nowNs > since ? nowNs - since : 0n;
        return { ...p, startPosition: StartPosition.TimeDeltaStart, startTimeDelta: delta };
      }
      case StartPosition.TimeDeltaStart: {
        const at = this.startTimeNs ?? nowNs;
        return { ...p, startTimeDelta: nowNs > at ? nowNs - at : 0n };
      }
      default:
        return p; // first
    }
  }

  /** Acknowledges a sequence. Throws when the subscription or connection is closed. */
  ack(sequence: bigint): void {
    if (this.ended) {
      throw new StanSubscriptionError(ErrorCode.InvalidSubscription, Messages.invalidSubscription);
    }
    this.session.sendAck(this, sequence);
  }

  /** True once closed, unsubscribed or ended by connection loss. */
  get isEnded(): boolean {
    return this.ended;
  }

  /** Closes (`unsubscribe=false`: a durable keeps its position) or unsubscribes. */
  async end(unsubscribe: boolean, call?: CallOptions): Promise<void> {
    if (this.ended) {
      throw new StanSubscriptionError(ErrorCode.InvalidSubscription, Messages.invalidSubscription);
    }
    this.ended = true;
    clearTimeout(this.heldTimer);
    try {
      await this.session.endSubscription(this, unsubscribe, call);
    } finally {
      this.sink.end();
    }
  }

  /** @internal Ends locally because the session ended. */
  terminate(error: StanError | undefined): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.heldTimer);
    this.detach();
    this.sink.end(error);
  }
}
