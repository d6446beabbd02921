/**
 * Recovery of a persistent store at startup (§8).
 *
 * @internal
 */

import type { ClientRecord, RecoveredChannel } from "../store/types.js";
import { Publish } from "./publish.js";
import type { Group, Sub } from "./state.js";

/** Engine layer 7: recovery at startup (module map in ../engine.ts). */
export class Recovery extends Publish {
  protected recover(clients: ClientRecord[], channels: RecoveredChannel[]): Sub[] {
    for (const rec of clients) this.addClient(rec);
    const online: Sub[] = [];
    for (const rc of channels) {
      const ch = this.addChannel(rc.name, rc.store);
      const newest = rc.store.msgs.lookup(rc.store.msgs.last);
      if (newest) this.clockFloor(newest.timestamp);
      for (const { record: r, pending } of rc.subs) {
        ch.nextSubId = Math.max(ch.nextSubId, r.id + 1);
        const maxPending = pending.reduce((a, b) => Math.max(a, b), 0);
        const lastSent = Math.max(r.lastSent, maxPending);
        const client = r.clientID !== "" ? this.clients.get(r.clientID) : undefined;
        const isOnline = client !== undefined && !r.isClosed;
        if (!r.isDurable && !isOnline) {
          rc.store.deleteSub(r.id);
          continue;
        }
        let group: Group | undefined;
        if (r.qGroup !== "") {
          group = ch.groups.get(r.qGroup);
          if (!group) {
            group = {
              key: r.qGroup,
              durable: r.isDurable,
              members: [],
              lastSent: 0,
              stalledCount: 0,
              shadow: undefined,
              redeliveries: new Map(),
            };
            ch.groups.set(r.qGroup, group);
          }
          if (!isOnline && r.clientID !== "") {
            rc.store.deleteSub(r.id);
            continue;
          }
          group.lastSent = Math.max(group.lastSent, lastSent);
        }
        const sub = this.newSub(
          ch,
          {
            clientID: isOnline ? r.clientID : "",
            inbox: r.inbox,
            maxInFlight: r.maxInFlight,
            ackWaitInSecs: r.ackWaitInSecs,
            durableName: r.durableName,
            isDurable: r.isDurable,
            qGroup: r.qGroup,
            group,
            lastSent,
          },
          r.id,
        );
        sub.recordClientID = r.clientID;
        sub.ackInbox = r.ackInbox;
        for (const seq of pending) sub.pending.set(seq, 0);
        ch.subRecords++;
        if (group) {
          if (isOnline) group.members.push(sub);
          else if (!group.shadow || lastSent > group.shadow.lastSent) {
            if (group.shadow) {
              ch.subRecords--;
              rc.store.deleteSub(group.shadow.id);
            }
            group.shadow = sub;
          } else {
            ch.subRecords--;
            rc.store.deleteSub(r.id);
            continue;
          }
        } else {
          if (isOnline) ch.plain.add(sub);
          if (r.isDurable) ch.durables.set(`${r.clientID}-${ch.name}-${r.durableName}`, sub);
        }
        if (isOnline && client) {
          client.subs.add(sub);
          this.listenAcks(sub);
          sub.initialized = true;
          sub.holdNew = sub.pending.size > 0;
          if (sub.pending.size >= sub.maxInFlight) this.setStalled(sub, true);
          online.push(sub);
        }
      }
      for (const g of ch.groups.values()) {
        if (g.members.length === 0 && !g.shadow) ch.groups.delete(g.key);
      }
      rc.store.flushSubs();
      this.armInactivity(ch);
    }
    return online;
  }

  /** §8: after startup each recovered online sub redelivers what is past due and resumes. */
  protected startRecoveredSub(sub: Sub): void {
    const now = Date.now();
    const log = sub.channel.store.msgs;
    let next = Number.POSITIVE_INFINITY;
    for (const [seq, exp] of this.sortedPending(sub)) {
      const msg = log.lookup(seq);
      if (!msg) {
        sub.pending.delete(seq);
        sub.channel.store.ack(sub.id, seq);
        continue;
      }
      if (exp <= now + 15) this.sendMsg(sub, msg, true);
      else next = Math.min(next, exp - now);
    }
    if (sub.pending.size > 0) {
      this.armTimer(sub, Number.isFinite(next) ? next : sub.ackWaitInSecs * 1000);
    }
    sub.holdNew = false;
    if (sub.pending.size < sub.maxInFlight) this.setStalled(sub, false);
    if (sub.group) this.deliverGroup(sub.group);
    else this.deliverPlain(sub);
  }
}
