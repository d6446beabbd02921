/**
 * Clients: connect and duplicate clientIDs (§2), heartbeats and pings (§3), connection close (§7).
 *
 * @internal
 */

import { FrameSubjectError, isFrameSubject } from "@stan-ts/core";
import {
  CloseRequestSchema,
  CloseResponseSchema,
  ConnectRequestSchema,
  ConnectResponseSchema,
  decode,
  encode,
  PingResponseSchema,
  PingSchema,
} from "@stan-ts/proto";
import type { Msg } from "nats";
import { isClientInbox, MAX_INBOX_LENGTH, SubjectTooLongError } from "../frames.js";
import type { ClientRecord } from "../store/types.js";
import { type Channel, type Client, EMPTY, Errors } from "./state.js";
import { Subscriptions } from "./subscriptions.js";

const CLIENT_ID_RE = /^[a-zA-Z0-9_-]+$/;

/** Engine layer 5: clients, heartbeats, pings, connection close (module map in ../engine.ts). */
export class Clients extends Subscriptions {
  protected onConnect(m: Msg) {
    const fail = (error: string) =>
      this.reply(this.general, m.reply, encode(ConnectResponseSchema, { error }));
    let clientID: string;
    let hbInbox: string;
    let rec: ClientRecord;
    try {
      const r = decode(ConnectRequestSchema, m.data);
      clientID = r.clientID;
      hbInbox = r.heartbeatInbox;
      rec = {
        id: r.clientID,
        hbInbox: r.heartbeatInbox,
        connID: Buffer.from(r.connID).toString("latin1"),
        protocol: r.protocol,
        pingInterval: r.pingInterval,
        pingMaxOut: r.pingMaxOut,
      };
    } catch {
      this.malformed("ConnectRequest", m);
      return fail(Errors.invalidConnReq);
    }
    if (!isClientInbox(hbInbox)) return fail(Errors.invalidConnReq);
    if (!CLIENT_ID_RE.test(clientID)) return fail(Errors.invalidClientID);
    const old = this.clients.get(clientID);
    if (!old) {
      this.register(rec, m.reply);
      return;
    }
    if (this.dupChecks.has(clientID)) return fail(Errors.clientIDRegistered);
    this.dupChecks.add(clientID);
    this.log.debug("duplicate clientID, probing the old client", { clientID });
    this.hbRequest(old.rec.hbInbox, 500).then(
      () => {
        this.dupChecks.delete(clientID);
        fail(Errors.clientIDRegistered);
      },
      () => {
        // The replacement is one of the serialized requests: it must not land while a
        // subscribe, unsubscribe or close of the old client is half done (a CloseRequest
        // the old client sent before would otherwise find, and close, the new client).
        const acked = this.barrier();
        this.serial(async () => {
          try {
            if (this.closing) return;
            await acked;
            const cur = this.clients.get(clientID);
            if (cur === old) {
              this.log.info("replacing client that did not answer", { clientID });
              this.closeClient(old);
            }
            if (this.clients.has(clientID)) return fail(Errors.clientIDRegistered);
            this.register(rec, m.reply);
          } finally {
            this.dupChecks.delete(clientID);
          }
        });
      },
    );
  }

  protected addClient(rec: ClientRecord): Client {
    const c: Client = { rec, subs: new Set(), fhb: 0, hbTimer: undefined, closed: false };
    this.clients.set(rec.id, c);
    if (rec.connID !== "") this.clientsByConn.set(rec.connID, c);
    return c;
  }

  protected register(rec: ClientRecord, replyTo: string | undefined): void {
    this.store.addClient(rec);
    const c = this.addClient(rec);
    this.armHb(c, this.cfg.hbInterval);
    const i = this.info;
    const resp = encode(ConnectResponseSchema, {
      pubPrefix: i.pubPrefix,
      subRequests: i.subRequests,
      unsubRequests: i.unsubRequests,
      closeRequests: i.closeRequests,
      subCloseRequests: i.subCloseRequests,
      protocol: 1,
      ...(rec.protocol >= 1
        ? {
            pingRequests: `${i.discoverPrefix}.pings`,
            pingInterval: rec.pingInterval,
            pingMaxOut: rec.pingMaxOut,
          }
        : {}),
    });
    this.log.debug("client connected", { clientID: rec.id });
    this.reply(this.general, replyTo, resp);
  }

  protected armHb(c: Client, delay: number): void {
    if (c.closed || this.closing) return;
    if (c.hbTimer) clearTimeout(c.hbTimer);
    c.hbTimer = setTimeout(() => this.sendHb(c), delay);
  }

  protected sendHb(c: Client): void {
    c.hbTimer = undefined;
    if (c.closed || this.closing) return;
    this.hbRequest(c.rec.hbInbox, this.cfg.hbTimeout).then(
      () => {
        if (c.closed) return;
        if (c.fhb > 0) {
          c.fhb = 0;
          this.setFailedHB(c, false);
        }
        this.armHb(c, this.cfg.hbInterval);
      },
      () => {
        if (c.closed || this.closing) return;
        c.fhb++;
        if (c.fhb === 1) this.setFailedHB(c, true);
        if (c.fhb > this.cfg.hbFailCount) {
          this.log.info("client missed heartbeats, closing it", { clientID: c.rec.id });
          const acked = this.barrier();
          this.serial(async () => {
            await acked;
            if (this.clients.get(c.rec.id) === c) this.closeClient(c);
          });
          return;
        }
        this.armHb(c, this.cfg.hbInterval);
      },
    );
  }

  /**
   * A heartbeat request. An inbox that cannot stand in a PUB frame (a record recovered from a
   * store written before connect refused such inboxes) fails like an unanswered heartbeat,
   * without a byte sent: nats.js would write it raw and break the hb connection.
   */
  protected hbRequest(inbox: string, timeout: number): Promise<Msg> {
    if (inbox.length > MAX_INBOX_LENGTH) {
      return Promise.reject(new SubjectTooLongError(inbox, `${MAX_INBOX_LENGTH} characters`));
    }
    if (!isFrameSubject(inbox)) {
      return Promise.reject(new FrameSubjectError("heartbeat inbox", inbox));
    }
    return this.hb.request(inbox, EMPTY, { timeout });
  }

  protected setFailedHB(c: Client, failed: boolean): void {
    for (const sub of c.subs) sub.hasFailedHB = failed;
  }

  protected onPing(m: Msg): void {
    if (m.data.length === 0) {
      this.malformed("Ping", m);
      return;
    }
    let connID: string;
    try {
      connID = Buffer.from(decode(PingSchema, m.data).connID).toString("latin1");
    } catch {
      this.malformed("Ping", m);
      return;
    }
    const c = this.clientsByConn.get(connID);
    if (!c) {
      this.reply(this.hb, m.reply, encode(PingResponseSchema, { error: Errors.replaced }));
      return;
    }
    this.reply(this.hb, m.reply, EMPTY);
    if (c.fhb > 0 && c.hbTimer) this.armHb(c, 1);
  }

  /** `acked`: the {@link barrier} started when the request arrived. */
  protected async onClose(m: Msg, acked: Promise<void>): Promise<void> {
    if (this.closing) return;
    const fail = (error: string) =>
      this.reply(this.general, m.reply, encode(CloseResponseSchema, { error }));
    let clientID: string;
    try {
      clientID = decode(CloseRequestSchema, m.data).clientID;
    } catch {
      this.malformed("CloseRequest", m);
      return fail(Errors.invalidCloseReq);
    }
    await acked;
    const c = this.clients.get(clientID);
    if (!c) return fail(Errors.unknownClient);
    this.closeClient(c);
    this.reply(this.general, m.reply, EMPTY);
  }

  /** Unregisters a client and closes its subscriptions (§7). */
  protected closeClient(c: Client): void {
    c.closed = true;
    if (c.hbTimer) clearTimeout(c.hbTimer);
    c.hbTimer = undefined;
    this.clients.delete(c.rec.id);
    if (c.rec.connID !== "" && this.clientsByConn.get(c.rec.connID) === c) {
      this.clientsByConn.delete(c.rec.connID);
    }
    this.store.deleteClient(c.rec.id);
    const touched = new Set<Channel>();
    for (const sub of c.subs) {
      this.removeSub(sub, true);
      touched.add(sub.channel);
    }
    c.subs.clear();
    for (const ch of touched) {
      ch.store.flushSubs();
      this.armInactivity(ch);
    }
    this.log.debug("client closed", { clientID: c.rec.id });
  }
}
