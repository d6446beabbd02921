import { connect, type NatsConnection } from "nats";
import { paced, payload } from "../lib/meter.js";
import type { ClientAdapter, Job } from "../lib/types.js";

/** How many publishes go out between flushes (bounds the client's outbound buffer). */
const FLUSH_EVERY = 4096;

function open(job: Job): Promise<NatsConnection> {
  return connect({ servers: job.url, name: job.clientId });
}

/**
 * Raw `nats` 2.x on the same nats-server, no streaming server involved: the ceiling of what
 * any client can do on this socket (publish: no acks; sync: a flush round trip).
 */
export const rawNats: ClientAdapter = {
  async publish(job, meter) {
    const nc = await open(job);
    const data = payload(job.size);
    const subject = `raw.${job.subject}`;
    meter.start();
    for (let i = 0; i < job.count; i++) {
      nc.publish(subject, data);
      if (i % FLUSH_EVERY === FLUSH_EVERY - 1) {
        meter.sample();
        await nc.flush();
      }
    }
    await nc.flush();
    meter.stop();
    await nc.close();
    return meter.throughput(job.count);
  },

  async sync(job, meter) {
    const nc = await open(job);
    const data = payload(job.size);
    const subject = `raw.${job.subject}`;
    const lat = new Float64Array(job.count);
    meter.start();
    for (let i = 0; i < job.count; i++) {
      const t = performance.now();
      nc.publish(subject, data);
      await nc.flush();
      lat[i] = (performance.now() - t) * 1000;
    }
    meter.stop();
    await nc.close();
    return meter.latency(lat, job.count);
  },

  async e2e(job, meter) {
    const nc = await open(job);
    const subject = `raw.${job.subject}`;
    const lat = new Float64Array(job.count);
    let n = 0;
    let resolveAll!: () => void;
    const received = new Promise<void>((r) => {
      resolveAll = r;
    });
    nc.subscribe(subject, {
      callback: (_err, msg) => {
        if (n >= job.count) return;
        const d = msg.data;
        const sent = new DataView(d.buffer, d.byteOffset, d.byteLength).getFloat64(0, true);
        lat[n] = (performance.now() - sent) * 1000;
        if (++n === job.count) resolveAll();
      },
    });
    await nc.flush();
    meter.start();
    await paced(job.count, job.rate, () => {
      const data = payload(job.size);
      new DataView(data.buffer).setFloat64(0, performance.now(), true);
      nc.publish(subject, data);
    });
    await received;
    meter.stop();
    await nc.close();
    return meter.latency(lat, n);
  },
};
