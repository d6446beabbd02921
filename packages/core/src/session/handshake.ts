/**
 * The connect handshake: the ConnectRequest on `<discoverPrefix>.<clusterId>`, the
 * ConnectResponse's subjects, the heartbeat inbox the server probes and the PubAck inbox;
 * their teardown when the session ends. Used by `Session.open()` and by each heal (heal.ts).
 */

import { CloseRequestSchema, ConnectRequestSchema, encode } from "@stan-ts/proto";
import { type CallOptions, withCancel } from "../cancel.js";
import { ErrorCode, Messages, type StanConnectionError, StanServerError } from "../errors.js";
import { createInbox } from "../nuid.js";
import type { NatsMsgLike, NatsSubscriptionLike } from "../transport.js";
import { watchers, watchNatsClosed } from "./nats-watch.js";
import type { Pinger } from "./pings.js";
import type { Publisher } from "./publishing.js";
import { decodeConnectResponse, mapRequestError } from "./replies.js";
import type { Session } from "./session.js";
import type { SessionState } from "./state.js";

const noop = () => {};

/** @internal A session's registration with the server (see the file's comment). */
export class Handshake {
  private hbSub: NatsSubscriptionLike | undefined;
  private ackSub: NatsSubscriptionLike | undefined;
  private natsClosedWatch = false;

  constructor(
    private readonly s: SessionState,
    private readonly session: Session,
    private readonly publisher: Publisher,
    private readonly pings: Pinger,
  ) {}

  /** Registers the session with the server (first open or heal) and opens it. */
  async run(call?: CallOptions): Promise<void> {
    const nc = this.s.nc;
    // A fresh heartbeat inbox each time: when healing, the server probes the old one, gets
    // no responders, and replaces the old registration at once.
    const hbInbox = createInbox();
    this.hbSub = nc.subscribe(hbInbox, {
      callback: (_err, msg) => {
        if (msg.reply) nc.publish(msg.reply);
      },
    });
    if (!this.ackSub) {
      this.ackSub = nc.subscribe(this.publisher.ackInbox, {
        callback: (_err, msg) => this.publisher.onPubAck(msg),
      });
    }
    const pingSecs = Math.max(1, Math.round(this.s.opts.pingInterval / 1000));
    const req = encode(ConnectRequestSchema, {
      clientID: this.s.clientId,
      heartbeatInbox: hbInbox,
      protocol: 1,
      connID: this.s.connId,
      pingInterval: pingSecs,
      pingMaxOut: this.s.opts.pingMaxOut,
    });
    const subject = `${this.s.opts.discoverPrefix}.${this.s.clusterId}`;
    let reply: NatsMsgLike;
    try {
      reply = await withCancel(
        nc.request(subject, req, { timeout: this.s.opts.connectTimeout }),
        call,
        "connect",
      );
    } catch (err) {
      this.abandon();
      throw mapRequestError(err, Messages.connectTimeout, ErrorCode.ConnectTimeout);
    }
    let response: ReturnType<typeof decodeConnectResponse>;
    try {
      response = decodeConnectResponse(reply.data);
    } catch (err) {
      this.abandon();
      throw err;
    }
    if (response.error) {
      this.abandon();
      throw new StanServerError(ErrorCode.ServerError, response.error);
    }
    const r = response;
    if (this.s.state !== "connecting" && this.s.state !== "reconnecting") {
      // close() (or a fatal loss) came while this connect request was in flight: the server
      // has registered a session nobody wants. Do not revive it; release it on the server
      // (best effort) so the clientID is free, and stop answering its heartbeats.
      this.hbSub.unsubscribe();
      if (r.closeRequests && !nc.isClosed()) {
        const req = encode(CloseRequestSchema, { clientID: this.s.clientId });
        nc.request(r.closeRequests, req, { timeout: this.s.opts.connectTimeout }).catch(noop);
      }
      throw this.s.checkOpen() as StanConnectionError;
    }
    this.s.subjects = {
      pubPrefix: r.pubPrefix,
      subRequests: r.subRequests,
      unsubRequests: r.unsubRequests,
      subCloseRequests: r.subCloseRequests,
      closeRequests: r.closeRequests,
      pingRequests: r.pingRequests,
    };
    this.publisher.clearSubjects();
    this.pings.reset();
    // A first open is ready at once; a healed one once restore() re-created the subscriptions.
    if (this.s.state === "connecting") this.s.ready = true;
    this.s.state = "open";
    if (r.protocol >= 1 && r.pingInterval !== 0 && r.pingRequests) {
      this.pings.start(this.s.connId);
    }
    if (!this.natsClosedWatch) {
      this.natsClosedWatch = true;
      watchNatsClosed(nc, this.session);
    }
    this.s.emit({ type: "connected", clientId: this.s.clientId });
  }

  /**
   * Undoes a failed handshake's NATS subscriptions: the heartbeat inbox always, the ack
   * inbox too when the session never opened (on a borrowed connection it would outlive us).
   */
  private abandon(): void {
    this.hbSub?.unsubscribe();
    if (this.s.state === "connecting") {
      this.ackSub?.unsubscribe();
      this.ackSub = undefined;
    }
  }

  /** The session was lost: stop answering the old registration's heartbeats. */
  stopHeartbeats(): void {
    try {
      this.hbSub?.unsubscribe();
    } catch {
      // connection gone
    }
  }

  /** The session ended: leave the NATS connection's watcher and drop both inboxes. */
  teardown(): void {
    watchers.get(this.s.nc)?.delete(this.session);
    if (this.s.nc.isClosed()) return;
    try {
      this.hbSub?.unsubscribe();
      this.ackSub?.unsubscribe();
    } catch {
      // connection already gone
    }
  }
}
