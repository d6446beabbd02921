/**
 * Subscription requests (§5), unsubscribe and sub-close (§7), queue hand-over.
 *
 * @internal
 */

import type { SubscriptionRequest, UnsubscribeRequest } from "@stan-ts/proto";
import {
  decode,
  encode,
  StartPosition,
  SubscriptionRequestSchema,
  SubscriptionResponseSchema,
  UnsubscribeRequestSchema,
} from "@stan-ts/proto";
import { createInbox, type Msg } from "nats";
import { isClientInbox } from "../frames.js";
import type { SubRecord } from "../store/types.js";
import { isValidChannel } from "./channels.js";
import { Delivery } from "./delivery.js";
import { type Channel, type Client, EMPTY, Errors, type Group, type Sub } from "./state.js";

/** Engine layer 4: subscribe, unsubscribe and sub-close (module map in ../engine.ts). */
export class Subscriptions extends Delivery {
  protected subError(replyTo: string | undefined, error: string): void {
    this.reply(this.send, replyTo, encode(SubscriptionResponseSchema, { error }));
  }

  protected computeLastSent(ch: Channel, req: SubscriptionRequest): number {
    const { startPosition: pos, startSequence: startSeq, startTimeDelta: delta } = req;
    const log = ch.store.msgs;
    const first = log.first;
    const last = log.last;
    switch (pos) {
      case StartPosition.NewOnly:
        return last;
      case StartPosition.LastReceived:
        return last > 0 ? last - 1 : 0;
      case StartPosition.First:
        return first > 0 ? first - 1 : 0;
      case StartPosition.TimeDeltaStart: {
        const seq = log.seqForTimestamp(this.nowNs() - delta);
        return seq > 0 ? seq - 1 : 0;
      }
      case StartPosition.SequenceStart: {
        const s =
          startSeq > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(startSeq);
        if (s < first) return first - 1;
        if (s > last) return last;
        return s > 0 ? s - 1 : 0;
      }
      default:
        return last;
    }
  }

  protected newSub(
    ch: Channel,
    fields: Pick<
      Sub,
      | "clientID"
      | "inbox"
      | "maxInFlight"
      | "ackWaitInSecs"
      | "durableName"
      | "isDurable"
      | "qGroup"
      | "group"
      | "lastSent"
    >,
    id: number = ch.nextSubId++,
  ): Sub {
    return {
      ...fields,
      id,
      channel: ch,
      recordClientID: fields.clientID,
      ackInbox: "",
      pending: new Map(),
      redeliveries: new Map(),
      stalled: false,
      initialized: false,
      holdNew: false,
      hasFailedHB: false,
      timer: undefined,
      ackSub: undefined,
    };
  }

  protected record(sub: Sub): SubRecord {
    return {
      id: sub.id,
      clientID: sub.clientID !== "" ? sub.clientID : sub.qGroup !== "" ? "" : sub.recordClientID,
      qGroup: sub.qGroup,
      inbox: sub.inbox,
      ackInbox: sub.ackInbox,
      maxInFlight: sub.maxInFlight,
      ackWaitInSecs: sub.ackWaitInSecs,
      durableName: sub.durableName,
      lastSent: sub.group ? sub.group.lastSent : sub.lastSent,
      isDurable: sub.isDurable,
      isClosed: sub.clientID === "",
    };
  }

  protected listenAcks(sub: Sub): void {
    const ch = sub.channel;
    sub.ackSub = this.acks.subscribe(sub.ackInbox, { callback: (_e, m) => this.onAck(m) });
    ch.byAckInbox.set(sub.ackInbox, sub);
    ch.byInbox.set(sub.inbox, sub);
  }

  protected async onSubscribe(m: Msg): Promise<void> {
    if (this.closing) return;
    let req: SubscriptionRequest;
    try {
      req = decode(SubscriptionRequestSchema, m.data);
    } catch {
      this.malformed("SubscriptionRequest", m);
      return this.subError(m.reply, Errors.invalidSubReq);
    }
    if (req.clientID === "") return this.subError(m.reply, Errors.missingClient);
    if (req.ackWaitInSecs <= 0) return this.subError(m.reply, Errors.invalidAckWait);
    if (req.maxInFlight <= 0) return this.subError(m.reply, Errors.invalidMaxInflight);
    if (req.startPosition < 0 || req.startPosition > 4) {
      return this.subError(m.reply, Errors.invalidStart);
    }
    if (!isValidChannel(req.subject)) return this.subError(m.reply, Errors.invalidSubject);
    const client = this.clients.get(req.clientID);
    if (!client) return this.subError(m.reply, Errors.unknownClient);
    const ch = this.channelFor(req.subject);
    if (typeof ch === "string") return this.subError(m.reply, ch);
    this.stopInactivity(ch);
    try {
      await this.subscribeOn(ch, client, req, m);
    } finally {
      this.armInactivity(ch);
    }
  }

  protected async subscribeOn(
    ch: Channel,
    client: Client,
    req: SubscriptionRequest,
    m: Msg,
  ): Promise<void> {
    if (req.qGroup !== "" && req.durableName.includes(":")) {
      return this.subError(m.reply, Errors.durableQueueColon);
    }
    // an inbox that cannot stand in a PUB frame would crash or corrupt every delivery
    if (!isClientInbox(req.inbox)) return this.subError(m.reply, Errors.invalidSubReq);
    const settings = {
      clientID: req.clientID,
      inbox: req.inbox,
      maxInFlight: req.maxInFlight,
      ackWaitInSecs: req.ackWaitInSecs,
    };
    const tooMany = () => ch.maxSubs > 0 && ch.subRecords >= ch.maxSubs;
    let sub: Sub;
    let resumed = false;
    if (req.qGroup !== "") {
      const key = req.durableName !== "" ? `${req.durableName}:${req.qGroup}` : req.qGroup;
      let g = ch.groups.get(key);
      if (g && g.members.length === 0 && g.shadow) {
        sub = g.shadow;
        g.shadow = undefined;
        Object.assign(sub, settings);
        sub.recordClientID = req.clientID;
        resumed = true;
      } else {
        if (tooMany()) return this.subError(m.reply, Errors.tooManySubs);
        if (!g) {
          g = {
            key,
            durable: req.durableName !== "",
            members: [],
            lastSent: this.computeLastSent(ch, req),
            stalledCount: 0,
            shadow: undefined,
            redeliveries: new Map(),
          };
          ch.groups.set(key, g);
        }
        sub = this.newSub(ch, {
          ...settings,
          durableName: "",
          isDurable: g.durable,
          qGroup: key,
          group: g,
          lastSent: 0,
        });
      }
      g.members.push(sub);
    } else {
      const key = `${req.clientID}-${req.subject}-${req.durableName}`;
      const existing = req.durableName !== "" ? ch.durables.get(key) : undefined;
      if (existing && existing.clientID !== "") {
        const owner = this.clients.get(existing.clientID);
        if (!this.cfg.replaceDurable || !owner) {
          return this.subError(m.reply, Errors.duplicateDurable);
        }
        owner.subs.delete(existing);
        this.removeSub(existing, true);
      }
      if (existing) {
        sub = existing;
        Object.assign(sub, settings);
        resumed = true;
      } else {
        if (tooMany()) return this.subError(m.reply, Errors.tooManySubs);
        sub = this.newSub(ch, {
          ...settings,
          durableName: req.durableName,
          isDurable: req.durableName !== "",
          qGroup: "",
          group: undefined,
          lastSent: this.computeLastSent(ch, req),
        });
        if (sub.isDurable) ch.durables.set(key, sub);
      }
      ch.plain.add(sub);
    }
    if (resumed) {
      sub.stalled = false;
      sub.hasFailedHB = false;
      sub.holdNew = sub.pending.size > 0;
      if (sub.group) sub.group.stalledCount = 0;
    } else {
      ch.subRecords++;
    }
    sub.hasFailedHB = client.fhb > 0;
    client.subs.add(sub);
    sub.ackInbox = createInbox();
    this.listenAcks(sub);
    if (resumed) ch.store.updateSub(this.record(sub));
    else ch.store.createSub(this.record(sub));
    ch.store.flushSubs();
    await this.acks.flush();
    this.reply(this.send, m.reply, encode(SubscriptionResponseSchema, { ackInbox: sub.ackInbox }));
    sub.initialized = true;
    this.log.debug("subscription created", {
      clientID: sub.clientID,
      channel: ch.name,
      id: sub.id,
      group: sub.qGroup,
      durable: sub.durableName,
      resumed,
    });
    this.startSub(sub, resumed);
  }

  /** The §5 sub-start step: redeliver pending (durables), release the hold, send the backlog. */
  protected startSub(sub: Sub, redeliverPending: boolean): void {
    if (sub.clientID === "") return;
    if (redeliverPending && sub.pending.size > 0) {
      const log = sub.channel.store.msgs;
      for (const seq of [...sub.pending.keys()].sort((a, b) => a - b)) {
        const msg = log.lookup(seq);
        if (!msg) this.removePending(sub, seq, true);
        else this.sendMsg(sub, msg, true);
      }
    }
    sub.holdNew = false;
    if (sub.pending.size >= sub.maxInFlight) this.setStalled(sub, true);
    if (sub.group) this.deliverGroup(sub.group);
    else this.deliverPlain(sub);
  }

  /** `acked`: the {@link barrier} started when the request arrived. */
  protected async onUnsubscribe(m: Msg, isClose: boolean, acked: Promise<void>): Promise<void> {
    if (this.closing) return;
    let req: UnsubscribeRequest;
    try {
      req = decode(UnsubscribeRequestSchema, m.data);
    } catch {
      this.malformed("UnsubscribeRequest", m);
      return this.subError(m.reply, Errors.invalidUnsubReq);
    }
    await acked;
    const ch = this.channels.get(req.subject);
    if (!ch) return this.subError(m.reply, Errors.unknownChannel);
    const sub = ch.byAckInbox.get(req.inbox) ?? ch.byInbox.get(req.inbox);
    if (!sub) return this.subError(m.reply, Errors.invalidSub);
    const client = this.clients.get(req.clientID);
    if (!client?.subs.has(sub)) return this.subError(m.reply, Errors.unknownClient);
    client.subs.delete(sub);
    this.removeSub(sub, isClose);
    ch.store.flushSubs();
    this.armInactivity(ch);
    this.reply(this.send, m.reply, EMPTY);
  }

  protected removeSub(sub: Sub, isClose: boolean): void {
    const ch = sub.channel;
    sub.ackSub?.unsubscribe();
    sub.ackSub = undefined;
    this.clearTimer(sub);
    if (ch.byAckInbox.get(sub.ackInbox) === sub) ch.byAckInbox.delete(sub.ackInbox);
    if (ch.byInbox.get(sub.inbox) === sub) ch.byInbox.delete(sub.inbox);
    const g = sub.group;
    if (g) {
      const idx = g.members.indexOf(sub);
      if (idx >= 0) g.members.splice(idx, 1);
      if (sub.stalled) g.stalledCount--;
      sub.stalled = false;
      if (g.members.length > 0) {
        const pending = [...sub.pending];
        this.deleteRecord(sub);
        this.handOver(pending, g);
        return;
      }
      if (g.durable && isClose) {
        sub.clientID = "";
        sub.initialized = false;
        g.shadow = sub;
        ch.store.updateSub(this.record(sub));
        return;
      }
      ch.groups.delete(g.key);
      this.deleteRecord(sub);
      return;
    }
    ch.plain.delete(sub);
    if (sub.isDurable && isClose) {
      sub.clientID = "";
      sub.initialized = false;
      sub.stalled = false;
      ch.store.updateSub(this.record(sub));
      return;
    }
    if (sub.isDurable) ch.durables.delete(`${sub.recordClientID}-${ch.name}-${sub.durableName}`);
    this.deleteRecord(sub);
  }

  protected deleteRecord(sub: Sub): void {
    sub.clientID = "";
    sub.pending.clear();
    sub.channel.subRecords--;
    sub.channel.store.deleteSub(sub.id);
  }

  /** §7: a leaving queue member's pending messages go round-robin to the others. */
  protected handOver(pending: Array<[number, number]>, g: Group): void {
    const ms = g.members;
    // the group's position survives on a remaining member's record
    ms[0]!.channel.store.updateSub(this.record(ms[0]!));
    const entries = pending.sort((a, b) => a[1] - b[1] || a[0] - b[0]);
    const touched = new Set<Sub>();
    entries.forEach(([seq], i) => {
      const to = ms[i % ms.length]!;
      if (!to.pending.has(seq)) {
        to.pending.set(seq, 1);
        to.channel.store.addPending(to.id, seq);
      }
      touched.add(to);
    });
    for (const to of touched) this.armTimer(to, 100);
  }
}
