/**
 * Channels and their limits: lookup and creation (case clash, MaxChannels), MaxInactivity deletion (§8).
 *
 * @internal
 */

import type { ChannelStore } from "../store/types.js";
import { type Channel, EngineState, Errors, MAX_TIMEOUT } from "./state.js";

/** Channel-name rules of §4. */
export function isValidChannel(name: string): boolean {
  if (name.length === 0) return false;
  if (name.startsWith(".") || name.endsWith(".")) return false;
  if (name.includes("..")) return false;
  return !/[*>/]/.test(name);
}

/** Engine layer 2: channels and their limits (module map in ../engine.ts). */
export class Channels extends EngineState {
  protected channelFor(name: string): Channel | string {
    const ch = this.channels.get(name);
    if (ch) return ch;
    const other = this.channelsLower.get(name.toLowerCase());
    if (other) {
      return `rejecting channel "${name}" because channel "${other.name}" alreay exists (different cases not allowed)`;
    }
    if (this.cfg.maxChannels > 0 && this.channels.size >= this.cfg.maxChannels) {
      return Errors.tooManyChannels;
    }
    try {
      const ch = this.addChannel(name, this.store.createChannel(name));
      this.armInactivity(ch);
      return ch;
    } catch (err) {
      return String((err as Error).message);
    }
  }

  protected addChannel(name: string, store: ChannelStore): Channel {
    const limits = this.cfg.limitsFor(name);
    const ch: Channel = {
      name,
      store,
      plain: new Set(),
      groups: new Map(),
      durables: new Map(),
      byAckInbox: new Map(),
      byInbox: new Map(),
      subRecords: 0,
      nextSubId: 1,
      maxSubs: limits.maxSubsPerChannel,
      maxInactivity: limits.maxInactivity,
      lastActivity: Date.now(),
      inactivity: undefined,
    };
    this.channels.set(name, ch);
    this.channelsLower.set(name.toLowerCase(), ch);
    this.log.debug("channel created", { channel: name });
    return ch;
  }

  protected hasOnlineSubs(ch: Channel): boolean {
    if (ch.plain.size > 0) return true;
    for (const g of ch.groups.values()) if (g.members.length > 0) return true;
    return false;
  }

  protected stopInactivity(ch: Channel): void {
    if (ch.inactivity) clearTimeout(ch.inactivity);
    ch.inactivity = undefined;
  }

  /** Starts the delete timer of a channel left without online subscriptions. */
  protected armInactivity(ch: Channel, delay = ch.maxInactivity): void {
    if (ch.maxInactivity <= 0 || ch.inactivity || this.closing) return;
    if (this.hasOnlineSubs(ch) || this.channels.get(ch.name) !== ch) return;
    if (delay === ch.maxInactivity) ch.lastActivity = Math.max(ch.lastActivity, Date.now());
    // capped to setTimeout's range: an early fire re-arms for the rest (onInactivity)
    ch.inactivity = setTimeout(() => this.onInactivity(ch), Math.min(delay, MAX_TIMEOUT));
  }

  protected onInactivity(ch: Channel): void {
    ch.inactivity = undefined;
    if (this.closing || this.hasOnlineSubs(ch)) return;
    const idle = Date.now() - ch.lastActivity;
    if (idle < ch.maxInactivity) {
      this.armInactivity(ch, ch.maxInactivity - idle);
      return;
    }
    for (const sub of ch.durables.values()) this.clearTimer(sub);
    for (const g of ch.groups.values()) if (g.shadow) this.clearTimer(g.shadow);
    this.channels.delete(ch.name);
    this.channelsLower.delete(ch.name.toLowerCase());
    this.store.deleteChannel(ch.name);
    this.log.info("channel deleted after inactivity", { channel: ch.name });
  }
}
