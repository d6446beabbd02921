/**
 * The publish path (§4): PubMsg validation, IO batches, storing, PubAcks.
 *
 * @internal
 */

import type { Msg } from "nats";
import { decodePubMsg, encodeMsgProto, encodePubAck } from "../codec.js";
import { StampedMsg } from "../store/memory.js";
import { isValidChannel } from "./channels.js";
import { Clients } from "./clients.js";
import { type Channel, Errors, type QueuedPub, REDELIVERY_BYTES, tooLarge } from "./state.js";

/** Engine layer 6: the publish path (module map in ../engine.ts). */
export class Publish extends Clients {
  protected onPublish(m: Msg): void {
    if (this.closing) return; // shutting down: no new work for a store about to close
    let pm: ReturnType<typeof decodePubMsg>;
    try {
      pm = decodePubMsg(m.data);
    } catch {
      this.malformed("PubMsg", m);
      this.reply(this.send, m.reply, encodePubAck("", Errors.invalidPubReq));
      return;
    }
    if (pm.guid === "" || !isValidChannel(pm.subject)) {
      this.reply(this.send, m.reply, encodePubAck(pm.guid, Errors.invalidPubReq));
      return;
    }
    const client =
      pm.connID !== "" ? this.clientsByConn.get(pm.connID) : this.clients.get(pm.clientID);
    if (!client) {
      this.reply(this.send, m.reply, encodePubAck(pm.guid, Errors.invalidPubReq));
      return;
    }
    this.queue.push({
      guid: pm.guid,
      subject: pm.subject,
      reply: pm.reply,
      data: pm.data,
      ackTo: m.reply ?? "",
    });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.processBatch());
    }
  }

  protected processBatch(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    const touched = new Set<Channel>();
    const ok: QueuedPub[] = [];
    const maxPayload = this.maxPayload();
    for (const p of batch) {
      const ch = this.channelFor(p.subject);
      if (typeof ch === "string") {
        this.reply(this.send, p.ackTo, encodePubAck(p.guid, ch));
        continue;
      }
      const log = ch.store.msgs;
      const seq = log.last + 1;
      // stamp() never goes back in a process run and starts above every recovered channel's
      // last timestamp, so the stamp is never below the channel's previous one: no clamp.
      this.stamp();
      const ms = this.tsMs;
      const sub = this.tsSub;
      const bytes = encodeMsgProto(seq, p.subject, p.reply, p.data, ms, sub);
      // a MsgProto is bigger than its PubMsg when the guid and clientID are short: one that
      // cannot be delivered (or redelivered) on this connection is refused, not stored (the
      // Go server stores it and its subscribers stall on it for good)
      if (bytes.length + REDELIVERY_BYTES > maxPayload) {
        this.reply(this.send, p.ackTo, encodePubAck(p.guid, tooLarge(bytes.length, maxPayload)));
        continue;
      }
      try {
        log.append(new StampedMsg(seq, bytes, ms, sub));
      } catch (err) {
        this.reply(this.send, p.ackTo, encodePubAck(p.guid, String((err as Error).message)));
        continue;
      }
      touched.add(ch);
      ok.push(p);
    }
    const now = Date.now();
    for (const ch of touched) {
      ch.lastActivity = now;
      ch.store.msgs.flush();
      this.deliverChannel(ch);
      ch.store.flushSubs();
    }
    for (const p of ok) this.pubAck(p.ackTo, p.guid);
  }
}
