/**
 * Subscription requests and the registry of a session's subscriptions: `subscribe()` (the
 * SubscriptionRequest, asked again when a heal comes in between), acks (`sendAck`), closing
 * and unsubscribing (`endSubscription`). Each subscription's own state is a `CoreSubscription`
 * (subscription.ts); heal.ts re-creates them through {@link Subscriptions.requestSubscription}.
 */

import {
  encode,
  SubscriptionRequestSchema,
  SubscriptionResponseSchema,
  UnsubscribeRequestSchema,
} from "@stan-ts/proto";
import { type CallOptions, withCancel } from "../cancel.js";
import { encodeAck } from "../codec.js";
import {
  ErrorCode,
  hasErrorCode,
  Messages,
  StanConnectionError,
  StanServerError,
  StanSubscriptionError,
} from "../errors.js";
import { createInbox } from "../nuid.js";
import type { NatsMsgLike } from "../transport.js";
import { decodeOrProtocolError, mapRequestError, notDeleted } from "./replies.js";
import type { Session } from "./session.js";
import type { SessionState } from "./state.js";
import { CoreSubscription } from "./subscription.js";
import type { SubscribeParams, SubscriptionSink } from "./types.js";

/** @internal A session's subscriptions and their requests (see the file's comment). */
export class Subscriptions {
  /** The subscriptions a heal re-creates and a shutdown ends. */
  readonly subs = new Set<CoreSubscription>();

  constructor(
    private readonly s: SessionState,
    private readonly session: Session,
  ) {}

  /** Creates a subscription on the server; messages go to `sink`. */
  async subscribe(
    params: SubscribeParams,
    sink: SubscriptionSink,
    call?: CallOptions,
  ): Promise<CoreSubscription> {
    const sub = new CoreSubscription(this.session, params, sink);
    // The call's timeout bounds the whole call, a second request after a heal included.
    const deadline = call?.timeout === undefined ? undefined : Date.now() + call.timeout;
    let step = call;
    for (;;) {
      await this.s.waitOpen(step, "subscribe", this.s.opts.pubAckTimeout);
      const epoch = this.s.epoch;
      try {
        await this.requestSubscription(sub, params, step);
        break;
      } catch (err) {
        // The session was lost while the request was in flight: whatever the server made of
        // it went with the old session. Ask again once healed, as a call made during the
        // heal would, unless the call's own signal or timeout ended it.
        const usable = this.s.state === "reconnecting" || this.s.state === "open";
        const own = hasErrorCode(err, ErrorCode.Timeout) || hasErrorCode(err, ErrorCode.Aborted);
        if (this.s.epoch !== epoch && usable && !own && !call?.signal?.aborted) {
          if (deadline !== undefined) {
            step = { signal: call?.signal, timeout: Math.max(0, deadline - Date.now()) };
          }
          continue;
        }
        throw err;
      }
    }
    this.subs.add(sub);
    return sub;
  }

  /** @internal Sends a SubscriptionRequest for `sub` on a fresh delivery inbox. */
  async requestSubscription(
    sub: CoreSubscription,
    params: SubscribeParams,
    call?: CallOptions,
  ): Promise<void> {
    const epoch = this.s.epoch;
    const inbox = createInbox();
    const natsSub = this.s.nc.subscribe(inbox, {
      callback: (_err, msg) => sub.onMessage(msg, natsSub),
    });
    // Deliveries can be dispatched before this function resumes after the reply: take them.
    sub.attach(natsSub, inbox, sub.ackInbox);
    const req = encode(SubscriptionRequestSchema, {
      clientID: this.s.clientId,
      subject: params.subject,
      qGroup: params.queue ?? "",
      inbox,
      maxInFlight: params.maxInflight,
      ackWaitInSecs: params.ackWaitSecs,
      durableName: params.durableName ?? "",
      startPosition: params.startPosition,
      startSequence: params.startSequence ?? 0n,
      startTimeDelta: params.startTimeDelta ?? 0n,
    });
    let reply: NatsMsgLike;
    try {
      reply = await withCancel(
        this.s.flushThen(() =>
          this.s.nc.request(this.s.subjects.subRequests, req, {
            timeout: this.s.opts.connectTimeout,
          }),
        ),
        call,
        "subscribe",
      );
    } catch (err) {
      natsSub.unsubscribe();
      if (this.s.subjects.subCloseRequests && this.s.state === "open") {
        // Best effort, as the official clients do: the server may have created it anyway.
        const bye = encode(UnsubscribeRequestSchema, {
          clientID: this.s.clientId,
          subject: params.subject,
          inbox,
          durableName: params.durableName ?? "",
        });
        this.s.nc.publish(this.s.subjects.subCloseRequests, bye);
      }
      throw this.s.checkOpen() ?? mapRequestError(err, Messages.subscribeTimeout);
    }
    let resp: { ackInbox: string; error: string };
    try {
      resp = decodeOrProtocolError(SubscriptionResponseSchema, reply.data, "SubscriptionResponse");
    } catch (err) {
      natsSub.unsubscribe();
      throw err;
    }
    if (resp.error) {
      natsSub.unsubscribe();
      throw new StanServerError(ErrorCode.ServerError, resp.error);
    }
    const lost =
      this.s.checkOpen() ??
      (this.s.epoch === epoch
        ? undefined
        : new StanConnectionError(
            ErrorCode.ConnectionLost,
            "stan: the session was lost while subscribing (its registration went with it)",
          ));
    if (lost) {
      natsSub.unsubscribe();
      throw lost;
    }
    sub.ackInbox = resp.ackInbox;
    sub.stale = false;
    sub.resumed(this.s.opts.connectTimeout);
    // acks asked for while it was being re-created go to its new ack inbox now
    for (const seq of sub.takeQueuedAcks()) {
      this.s.outbox.enqueue(sub.ackInbox, encodeAck(params.subject, seq), undefined, "");
    }
  }

  /**
   * Acknowledges `sequence`, or keeps it for the new ack inbox during a heal (see
   * {@link Session.sendAck}).
   */
  sendAck(sub: CoreSubscription, sequence: bigint, internal = false): void {
    if (this.s.state === "reconnecting" || sub.stale || sub.resubscribing) {
      sub.queueAck(sequence, internal);
      return;
    }
    const closed = this.s.checkOpen();
    if (closed) throw closed;
    this.s.outbox.enqueue(sub.ackInbox, encodeAck(sub.params.subject, sequence), undefined, "");
  }

  /** @internal */
  async endSubscription(
    sub: CoreSubscription,
    unsubscribe: boolean,
    call?: CallOptions,
  ): Promise<void> {
    const notMadeYet = this.s.state === "open" && !this.s.ready && sub.stale && !sub.resubscribing;
    if (!unsubscribe && (this.s.state === "reconnecting" || notMadeYet)) {
      // The heal has not re-created it and now will not (resubscribe() skips it); the server
      // took the old registration offline with the old session.
      this.subs.delete(sub);
      sub.detach();
      return;
    }
    const what = unsubscribe ? "unsubscribe" : "subscription close";
    try {
      await this.s.waitOpen(call, what, this.s.opts.pubAckTimeout);
      if (sub.resubscribing) {
        // Being re-created (a heal, or a restart from the first message): its ack inbox is
        // about to change. Wait for the new one, then decide again.
        await withCancel(sub.resubscribing, call, what);
        return this.endSubscription(sub, unsubscribe, call);
      }
    } catch (err) {
      // Given up before anything was sent: no heal may re-create what the caller asked to end
      // (a durable that was to be deleted keeps its state on the server: the error says so).
      this.subs.delete(sub);
      sub.detach();
      if (unsubscribe && this.s.state !== "closed" && this.s.state !== "lost") {
        throw notDeleted(err, sub);
      }
      throw err;
    }
    if (!this.subs.has(sub)) {
      // the heal could not re-create it: the server has no such subscription to end
      sub.detach();
      return;
    }
    const subject = unsubscribe ? this.s.subjects.unsubRequests : this.s.subjects.subCloseRequests;
    if (!subject) {
      throw new StanServerError(ErrorCode.NotSupported, Messages.notSupported);
    }
    sub.detach();
    this.subs.delete(sub);
    const req = encode(UnsubscribeRequestSchema, {
      clientID: this.s.clientId,
      subject: sub.params.subject,
      inbox: sub.ackInbox,
      durableName: sub.params.durableName ?? "",
    });
    let reply: NatsMsgLike;
    try {
      reply = await withCancel(
        this.s.flushThen(() =>
          this.s.nc.request(subject, req, { timeout: this.s.opts.connectTimeout }),
        ),
        call,
        unsubscribe ? "unsubscribe" : "subscription close",
      );
    } catch (err) {
      throw (
        this.s.checkOpen() ??
        mapRequestError(err, unsubscribe ? Messages.unsubscribeTimeout : Messages.closeTimeout)
      );
    }
    const resp = decodeOrProtocolError(
      SubscriptionResponseSchema,
      reply.data,
      "SubscriptionResponse",
    );
    if (resp.error) {
      if (resp.error === Messages.invalidSubscription) {
        throw new StanSubscriptionError(ErrorCode.InvalidSubscription, resp.error);
      }
      throw new StanServerError(ErrorCode.ServerError, resp.error);
    }
  }

  /** Best effort: asks the server to take `sub`'s registration offline (a durable keeps its state). */
  closeOnServer(sub: CoreSubscription): void {
    // without a close request (a pre-0.4 server), only a non-durable may be unsubscribed
    const subject =
      this.s.subjects.subCloseRequests ||
      (sub.params.durableName ? "" : this.s.subjects.unsubRequests);
    if (!subject || !sub.ackInbox || this.s.state !== "open") return;
    const req = encode(UnsubscribeRequestSchema, {
      clientID: this.s.clientId,
      subject: sub.params.subject,
      inbox: sub.ackInbox,
      durableName: sub.params.durableName ?? "",
    });
    try {
      this.s.flushThen(() => this.s.nc.publish(subject, req));
    } catch {
      // the connection is going: the server drops the registration with it
    }
  }

  /** The session was lost: each subscription waits to be re-created. */
  lostAll(): void {
    for (const sub of this.subs) sub.lost();
  }

  /** The session ended: every subscription ends (with `ending`, if not a normal close). */
  terminateAll(ending: StanConnectionError | undefined): void {
    for (const sub of this.subs) sub.terminate(ending);
    this.subs.clear();
  }
}
