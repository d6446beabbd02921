/**
 * Delivery to plain subscribers and queue groups (§6), acks, redelivery timers.
 *
 * @internal
 */

import type { Msg } from "nats";
import { decodeAck, withRedelivery } from "../codec.js";
import type { StoredMsg } from "../store/types.js";
import { Channels } from "./channels.js";
import { type Channel, type Group, MAX_TIMEOUT, type Sub } from "./state.js";

/** Engine layer 3: delivery, acks and redelivery (module map in ../engine.ts). */
export class Delivery extends Channels {
  protected deliverChannel(ch: Channel): void {
    for (const sub of ch.plain) this.deliverPlain(sub);
    for (const g of ch.groups.values()) this.deliverGroup(g);
  }

  protected canSend(sub: Sub): boolean {
    return sub.initialized && sub.clientID !== "" && !sub.holdNew;
  }

  protected deliverPlain(sub: Sub): void {
    if (!this.canSend(sub) || sub.stalled) return;
    const log = sub.channel.store.msgs;
    let seq = sub.lastSent + 1;
    if (seq < log.first) {
      seq = log.first;
      sub.lastSent = seq - 1;
    }
    const last = log.last;
    while (seq <= last) {
      const msg = log.lookup(seq);
      if (msg && !this.sendMsg(sub, msg, false)) break;
      if (sub.stalled) break;
      seq++;
    }
  }

  protected deliverGroup(g: Group): void {
    if (g.members.length === 0) return;
    const log = g.members[0]!.channel.store.msgs;
    let seq = g.lastSent + 1;
    if (seq < log.first) {
      seq = log.first;
      g.lastSent = seq - 1;
    }
    const last = log.last;
    while (seq <= last && g.stalledCount < g.members.length) {
      const msg = log.lookup(seq);
      if (msg) {
        const member = this.pickMember(g);
        if (!member || !this.sendMsg(member, msg, false)) break;
      } else {
        g.lastSent = seq;
      }
      seq++;
    }
  }

  /** §6 member choice: fewest pending among healthy members, else the first; rotates. */
  protected pickMember(g: Group): Sub | undefined {
    let best: Sub | undefined;
    let bestIdx = -1;
    const ms = g.members;
    for (let i = 0; i < ms.length; i++) {
      const s = ms[i]!;
      if (!s.initialized || s.stalled || s.hasFailedHB) continue;
      if (!best || s.pending.size < best.pending.size) {
        best = s;
        bestIdx = i;
      }
    }
    if (!best) {
      best = ms.find((s) => s.initialized);
      bestIdx = best ? ms.indexOf(best) : -1;
    }
    if (best && bestIdx === 0 && ms.length >= 2) {
      ms.shift();
      ms.push(best);
    }
    return best;
  }

  protected setStalled(sub: Sub, stalled: boolean): void {
    if (sub.stalled === stalled) return;
    sub.stalled = stalled;
    if (sub.group) sub.group.stalledCount += stalled ? 1 : -1;
  }

  /**
   * Sends a message to a sub. `force` is a redelivery: it ignores maxInFlight and the hold,
   * and sets redelivered/redeliveryCount. Returns false when the sub cannot take it.
   */
  protected sendMsg(sub: Sub, msg: StoredMsg, force: boolean): boolean {
    if (!sub.initialized || sub.clientID === "") return false;
    if (!force) {
      if (sub.holdNew) return false;
      if (sub.pending.size >= sub.maxInFlight) {
        this.setStalled(sub, true);
        return false;
      }
    }
    let bytes: Uint8Array = msg.bytes;
    const seq = msg.seq;
    if (force) {
      const counts = sub.group ? sub.group.redeliveries : sub.redeliveries;
      const n = (counts.get(seq) ?? 0) + 1;
      counts.set(seq, n);
      bytes = withRedelivery(msg.bytes, n);
    }
    if (bytes.length > this.maxPayload()) {
      this.undeliverable(sub, seq, bytes.length, force);
      return true;
    }
    try {
      this.out.publish(sub.inbox, bytes);
    } catch (err) {
      // one subscription's failed send must not escape (the Go server logs and carries on)
      this.log.error("delivery failed", { inbox: sub.inbox, seq, err: String(err) });
      return false;
    }
    const ackWaitMs = sub.ackWaitInSecs * 1000;
    const prev = sub.pending.get(seq);
    if (prev === undefined) {
      sub.pending.set(seq, Date.now() + ackWaitMs);
      sub.channel.store.addPending(sub.id, seq);
      if (sub.group) {
        if (seq > sub.group.lastSent) sub.group.lastSent = seq;
      } else if (seq > sub.lastSent) {
        sub.lastSent = seq;
      }
    } else {
      sub.pending.set(seq, (prev > 0 ? prev : Date.now()) + ackWaitMs);
    }
    if (!sub.timer) this.armTimer(sub, ackWaitMs);
    if (!force && sub.pending.size >= sub.maxInFlight) this.setStalled(sub, true);
    return true;
  }

  /**
   * Skips a message that can never be sent to `sub` (stored when max_payload was larger, e.g.
   * before a restart on another NATS server): it counts as sent and acknowledged, so the
   * subscription moves past it instead of stalling on it for good.
   */
  protected undeliverable(sub: Sub, seq: number, bytes: number, force: boolean): void {
    this.log.error("message too large to deliver, skipped", {
      channel: sub.channel.name,
      seq,
      bytes,
      maxPayload: this.maxPayload(),
      clientID: sub.clientID,
      redelivery: force,
    });
    if (sub.group) {
      if (seq > sub.group.lastSent) sub.group.lastSent = seq;
    } else if (seq > sub.lastSent) {
      sub.lastSent = seq;
    }
    this.removePending(sub, seq, true);
  }

  protected onAck(m: Msg): void {
    if (this.closing) return;
    let ack: ReturnType<typeof decodeAck>;
    try {
      ack = decodeAck(m.data);
    } catch {
      this.malformed("Ack", m);
      return;
    }
    const ch = this.channels.get(ack.subject);
    if (!ch) return;
    const sub = ch.byAckInbox.get(m.subject);
    if (!sub) return;
    this.ackSeq(sub, ack.sequence);
  }

  protected ackSeq(sub: Sub, seq: number): void {
    if (this.removePending(sub, seq, true)) return;
    const g = sub.group;
    if (!g) return;
    for (const other of g.members) {
      if (other !== sub && this.removePending(other, seq, true)) return;
    }
  }

  /** Removes a pending seq (an ack). Returns false if it was not pending. */
  protected removePending(sub: Sub, seq: number, dropCount: boolean): boolean {
    if (!sub.pending.delete(seq)) return false;
    sub.channel.store.ack(sub.id, seq);
    if (dropCount) (sub.group ? sub.group.redeliveries : sub.redeliveries).delete(seq);
    if (sub.stalled && sub.pending.size < sub.maxInFlight) {
      this.setStalled(sub, false);
      if (sub.group) this.deliverGroup(sub.group);
      else this.deliverPlain(sub);
    }
    return true;
  }

  protected armTimer(sub: Sub, ms: number): void {
    if (sub.timer) clearTimeout(sub.timer);
    // Node fires a longer timeout after 1 ms (ackWaitInSecs above ~24.8 days would spin);
    // an early fire finds nothing due and re-arms for the rest
    sub.timer = setTimeout(() => this.onAckTimeout(sub), Math.min(Math.max(0, ms), MAX_TIMEOUT));
  }

  /** Pending entries sorted by expiry, then seq; unknown expiries become ts + ackWait. */
  protected sortedPending(sub: Sub): Array<[number, number]> {
    const ackWaitMs = sub.ackWaitInSecs * 1000;
    const log = sub.channel.store.msgs;
    for (const [seq, exp] of sub.pending) {
      if (exp === 0) {
        const msg = log.lookup(seq);
        const ts = msg ? Number(msg.timestamp / 1_000_000n) : Date.now();
        sub.pending.set(seq, ts + ackWaitMs);
      }
    }
    return [...sub.pending].sort((a, b) => a[1] - b[1] || a[0] - b[0]);
  }

  protected onAckTimeout(sub: Sub): void {
    sub.timer = undefined;
    if (this.closing || sub.pending.size === 0 || sub.clientID === "") return;
    const ackWaitMs = sub.ackWaitInSecs * 1000;
    if (!sub.group && sub.hasFailedHB) {
      this.armTimer(sub, ackWaitMs);
      return;
    }
    const log = sub.channel.store.msgs;
    const now = Date.now();
    let next = 0;
    for (const [seq, exp] of this.sortedPending(sub)) {
      if (exp > now + 15) {
        next = exp - now;
        break;
      }
      if (!sub.pending.has(seq)) continue;
      const msg = log.lookup(seq);
      if (!msg) {
        this.removePending(sub, seq, true);
        continue;
      }
      if (sub.group) this.redeliverQueued(sub, msg);
      else this.sendMsg(sub, msg, true);
    }
    if (sub.clientID === "") return;
    this.armTimer(sub, next > 0 ? next : ackWaitMs);
  }

  protected redeliverQueued(sub: Sub, msg: StoredMsg): void {
    const g = sub.group!;
    const target = this.pickMember(g) ?? sub;
    if (target === sub) {
      this.sendMsg(sub, msg, true);
      return;
    }
    this.sendMsg(target, msg, true);
    this.removePending(sub, msg.seq, false);
  }
}
