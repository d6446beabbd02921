/**
 * The NATS Streaming server engine (server-behaviour.md §1-§9, standalone mode).
 *
 * Everything runs on the event loop: store calls are synchronous, publishes are handled in
 * IO batches (all messages that arrived before the loop turned), and the only timers are
 * one heartbeat timer per client and one redelivery timer per subscription.
 *
 * Module map: the engine is one object built in layers, each file one job, each class
 * extending the one before (so every layer calls the ones below it through `this`):
 *
 * | file | job |
 * |---|---|
 * | engine/state.ts | fields, error texts, shared types; serialized request chain, clock, replies |
 * | engine/channels.ts | channel lookup and creation, channel-name rules, MaxInactivity |
 * | engine/delivery.ts | delivery to subscribers and queue groups, acks, redelivery timers |
 * | engine/subscriptions.ts | subscribe, unsubscribe and sub-close requests, queue hand-over |
 * | engine/clients.ts | connect, duplicate clientIDs, heartbeats, pings, connection close |
 * | engine/publish.ts | PubMsg validation, IO batches, storing, PubAcks |
 * | engine/recovery.ts | rebuilding clients and subscriptions from a persistent store |
 * | engine.ts (this file) | the public {@link Engine}: start (subscriptions), shutdown, crash |
 *
 * @internal
 */

import {
  CloseRequestSchema,
  ConnectRequestSchema,
  ConnectResponseSchema,
  decode,
  encode,
} from "@stan-ts/proto";
import { connect, createInbox, type Msg } from "nats";
import { Recovery } from "./engine/recovery.js";
import { serverInfoFor } from "./engine/state.js";
import { FrameWriter } from "./frames.js";
import type { ServerInfo, Store } from "./store/types.js";

export { isValidChannel } from "./engine/channels.js";
export { type EngineConfig, Errors, tooLarge } from "./engine/state.js";

/** The running engine. */
export class Engine extends Recovery {
  /** Undecodable messages received from the network so far (each dropped or refused). */
  get protocolErrors(): number {
    return this.malformedCount;
  }

  /** Subjects and cluster of the running server. */
  get serverInfo(): ServerInfo {
    return this.info;
  }

  /**
   * Connects to NATS, recovers the store, subscribes and starts serving. The store is read
   * while the connections' handshakes are under way. `selfCheck: false` skips asking the
   * discover subject for another server with this cluster ID first: for a nats-server started
   * for this server alone, which nobody else can have joined.
   */
  async start(natsUrl: string, { selfCheck = true }: { selfCheck?: boolean } = {}): Promise<void> {
    const cid = this.cfg.clusterId;
    const conn = (name: string) =>
      connect({
        servers: natsUrl,
        name: `_NSS-${cid}-${name}`,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        pingInterval: 10_000,
        ...this.cfg.natsOptions,
      });
    const connecting = Promise.all([conn("general"), conn("send"), conn("acks"), conn("hb")]);
    let recovered: ReturnType<Store["recover"]>;
    try {
      recovered = this.store.recover();
    } catch (err) {
      // shutdown() cannot see these connections yet: close them here
      await connecting.then((c) => Promise.all(c.map((nc) => nc.close()))).catch(() => {});
      throw err;
    }
    [this.general, this.send, this.acks, this.hb] = await connecting;
    this.out = new FrameWriter(this.send);
    if (recovered) {
      if (recovered.info.clusterId !== cid) {
        throw new Error(
          `cluster ID "${cid}" does not match recovered value of "${recovered.info.clusterId}"`,
        );
      }
      this.info = recovered.info;
    } else {
      this.info = serverInfoFor(cid, this.cfg.discoverPrefix);
      this.store.init(this.info);
    }
    if (selfCheck) await this.selfCheck();
    const recoveredSubs = recovered ? this.recover(recovered.clients, recovered.channels) : [];
    const g = this.general;
    const i = this.info;
    g.subscribe(i.discoverPrefix, { callback: (_e, m) => this.onConnect(m) });
    g.subscribe(`${i.discoverPrefix}.pings`, { callback: (_e, m) => this.onPing(m) });
    g.subscribe(`${i.pubPrefix}.>`, { callback: (_e, m) => this.onPublish(m) });
    g.subscribe(i.subRequests, { callback: (_e, m) => this.serial(() => this.onSubscribe(m)) });
    // the requests that apply the acks before them start their barrier on arrival
    g.subscribe(i.unsubRequests, {
      callback: (_e, m) => {
        const acked = this.barrier();
        this.serial(() => this.onUnsubscribe(m, false, acked));
      },
    });
    g.subscribe(i.subCloseRequests, {
      callback: (_e, m) => {
        const acked = this.barrier();
        this.serial(() => this.onUnsubscribe(m, true, acked));
      },
    });
    g.subscribe(i.closeRequests, {
      callback: (_e, m) => {
        const acked = this.barrier();
        this.serial(() => this.onClose(m, acked));
      },
    });
    await Promise.all([g.flush(), this.acks.flush()]);
    for (const c of this.clients.values()) this.armHb(c, this.cfg.hbInterval);
    for (const sub of recoveredSubs) this.startRecoveredSub(sub);
    this.log.info("streaming server ready", {
      clusterId: cid,
      store: this.store.kind,
      nats: natsUrl,
      clients: this.clients.size,
      channels: this.channels.size,
    });
  }

  /**
   * Simulates a crash (kill -9) for tests: timers stop, NATS connections drop without a
   * flush, and buffered store writes that were not flushed yet are lost.
   */
  async crash(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.queue = []; // queued, unacknowledged publishes die with the process
    this.out?.discard();
    for (const c of this.clients.values()) if (c.hbTimer) clearTimeout(c.hbTimer);
    for (const ch of this.channels.values()) {
      this.stopInactivity(ch);
      for (const sub of ch.byAckInbox.values()) this.clearTimer(sub);
    }
    await Promise.allSettled(
      [this.general, this.send, this.acks, this.hb].map((nc) => nc?.close()),
    );
    this.store.close(false);
  }

  /** Stops serving, closes the NATS connections and the store. */
  async shutdown(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await this.chain.catch(() => {});
    if (this.queue.length > 0) this.processBatch();
    for (const c of this.clients.values()) {
      if (c.hbTimer) clearTimeout(c.hbTimer);
      c.closed = true;
    }
    for (const ch of this.channels.values()) {
      this.stopInactivity(ch);
      for (const sub of ch.byAckInbox.values()) this.clearTimer(sub);
      for (const d of ch.durables.values()) this.clearTimer(d);
      ch.store.flushSubs();
    }
    this.out?.flush();
    await Promise.allSettled(
      [this.general, this.send, this.acks, this.hb].map(async (nc) => {
        if (!nc || nc.isClosed()) return;
        await nc.flush().catch(() => {});
        await nc.close();
      }),
    );
    this.store.close();
  }

  private async selfCheck(): Promise<void> {
    const cid = this.cfg.clusterId;
    const req = encode(ConnectRequestSchema, { clientID: cid, heartbeatInbox: createInbox() });
    let resp: Msg;
    try {
      resp = await this.general.request(this.info.discoverPrefix, req, { timeout: 250 });
    } catch {
      return;
    }
    try {
      const cr = decode(ConnectResponseSchema, resp.data);
      if (cr.error === "" && cr.closeRequests !== "") {
        this.general.publish(cr.closeRequests, encode(CloseRequestSchema, { clientID: cid }));
        await this.general.flush();
      }
    } catch {
      return;
    }
    throw new Error(`discovered another streaming server with cluster ID "${cid}"`);
  }
}
