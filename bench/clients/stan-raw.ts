import { createInbox, encodeAck, encodeConstField, encodePubMsg, nuid } from "@stan-ts/core";
import {
  CloseRequestSchema,
  ConnectRequestSchema,
  ConnectResponseSchema,
  decode,
  encode,
  StartPosition,
  SubscriptionRequestSchema,
  SubscriptionResponseSchema,
} from "@stan-ts/proto";
import { connect, type NatsConnection } from "nats";
import { payload } from "../lib/meter.js";
import type { ClientAdapter, Job } from "../lib/types.js";

interface RawSession {
  nc: NatsConnection;
  pubPrefix: string;
  subRequests: string;
  closeRequests: string;
  connId: Uint8Array;
}

async function open(job: Job): Promise<RawSession> {
  const nc = await connect({ servers: job.url, name: job.clientId });
  const hb = createInbox();
  nc.subscribe(hb, { callback: (_e, m) => m.respond() });
  const connId = new TextEncoder().encode(nuid.next());
  const reply = await nc.request(
    `_STAN.discover.${job.clusterId}`,
    encode(ConnectRequestSchema, {
      clientID: job.clientId,
      heartbeatInbox: hb,
      protocol: 1,
      connID: connId,
      pingInterval: 5,
      pingMaxOut: 3,
    }),
    { timeout: 5000 },
  );
  const r = decode(ConnectResponseSchema, reply.data);
  if (r.error) throw new Error(r.error);
  return {
    nc,
    pubPrefix: r.pubPrefix,
    subRequests: r.subRequests,
    closeRequests: r.closeRequests,
    connId,
  };
}

async function close(s: RawSession, clientId: string): Promise<void> {
  await s.nc.request(s.closeRequests, encode(CloseRequestSchema, { clientID: clientId }), {
    timeout: 5000,
  });
  await s.nc.close();
}

/** Reads field 1 (sequence) of a MsgProto, which the servers write first. */
function firstVarint(b: Uint8Array): bigint {
  if (b[0] !== 0x08) throw new Error("MsgProto without a leading sequence");
  let lo = 0;
  let shift = 0;
  for (let i = 1; i < 10; i++) {
    const c = b[i] as number;
    lo += (c & 0x7f) * 2 ** shift;
    if (c < 0x80) return BigInt(lo);
    shift += 7;
  }
  throw new Error("bad varint");
}

/**
 * The streaming server's own capacity: the NATS Streaming protocol spoken with pre-encoded
 * messages and no per-message client bookkeeping, so only the server (and nats-server) limit it.
 */
export const stanRaw: ClientAdapter = {
  async publish(job, meter) {
    const s = await open(job);
    const data = payload(job.size);
    const clientField = encodeConstField(1, job.clientId);
    const connField = encodeConstField(6, s.connId);
    const prefix = nuid.next().slice(0, 12);
    const msgs = Array.from({ length: job.count }, (_, i) =>
      encodePubMsg(clientField, `${prefix}${i}`, job.subject, data, connField),
    );
    const subject = `${s.pubPrefix}.${job.subject}`;
    const ackInbox = createInbox();
    const opts = { reply: ackInbox };
    meter.start();
    await new Promise<void>((resolve) => {
      let sent = 0;
      let acked = 0;
      const pump = (): void => {
        while (sent < job.count && sent - acked < job.window) {
          s.nc.publish(subject, msgs[sent++], opts);
        }
      };
      s.nc.subscribe(ackInbox, {
        callback: () => {
          if (++acked === job.count) resolve();
          else pump();
        },
      });
      pump();
    });
    meter.stop();
    await close(s, job.clientId);
    return meter.throughput(job.count);
  },

  async replay(job, meter) {
    const s = await open(job);
    const inbox = createInbox();
    let ackInbox = "";
    let n = 0;
    let resolveAll!: () => void;
    const done = new Promise<void>((r) => {
      resolveAll = r;
    });
    meter.start();
    const early: bigint[] = []; // delivered before the subscription's reply named the ack inbox
    s.nc.subscribe(inbox, {
      callback: (_e, m) => {
        const seq = firstVarint(m.data);
        if (ackInbox) s.nc.publish(ackInbox, encodeAck(job.subject, seq));
        else early.push(seq);
        if (++n === job.count) resolveAll();
      },
    });
    const reply = await s.nc.request(
      s.subRequests,
      encode(SubscriptionRequestSchema, {
        clientID: job.clientId,
        subject: job.subject,
        inbox,
        maxInFlight: job.window,
        ackWaitInSecs: 30,
        startPosition: StartPosition.First,
      }),
      { timeout: 5000 },
    );
    const r = decode(SubscriptionResponseSchema, reply.data);
    if (r.error) throw new Error(r.error);
    ackInbox = r.ackInbox;
    for (const seq of early) s.nc.publish(ackInbox, encodeAck(job.subject, seq));
    await done;
    meter.stop();
    await close(s, job.clientId);
    return meter.throughput(n);
  },
};
