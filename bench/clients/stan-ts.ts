import { jetstream } from "@stan-ts/jetstream";
import { connect, type StanConnection } from "stan-ts";
import { paced, payload } from "../lib/meter.js";
import type { ClientAdapter, Job } from "../lib/types.js";

function open(job: Job): Promise<StanConnection> {
  return connect({
    clusterId: job.clusterId,
    clientId: job.clientId,
    servers: job.url,
    maxPubAcksInflight: Math.max(job.window, 1),
    ...(job.client === "stan-ts-jetstream" ? { backend: jetstream({ storage: "memory" }) } : {}),
  });
}

/** stan-ts, used the way its README shows. */
export const stanTs: ClientAdapter = {
  async publish(job, meter) {
    const sc = await open(job);
    const data = payload(job.size);
    let acked = 0;
    let failed: unknown;
    let allAcked!: () => void;
    const done = new Promise<void>((r) => {
      allAcked = r;
    });
    const onAck = (): void => {
      if (++acked === job.count) allAcked();
    };
    const onError = (err: unknown): void => {
      failed ??= err;
      onAck();
    };
    meter.start();
    for (let i = 0; i < job.count; i++) {
      const { acked: ack } = await sc.publishAsync(job.subject, data);
      ack.then(onAck, onError);
    }
    meter.sample();
    await done;
    meter.stop();
    await sc.close();
    if (failed) throw failed;
    return meter.throughput(job.count);
  },

  async sync(job, meter) {
    const sc = await open(job);
    const data = payload(job.size);
    const lat = new Float64Array(job.count);
    await sc.publish(job.subject, data); // the channel exists before the clock starts
    meter.start();
    for (let i = 0; i < job.count; i++) {
      const t = performance.now();
      await sc.publish(job.subject, data);
      lat[i] = (performance.now() - t) * 1000;
    }
    meter.stop();
    await sc.close();
    return meter.latency(lat, job.count);
  },

  async replay(job, meter) {
    const sc = await open(job);
    meter.start();
    const sub = await sc.subscribe(job.subject, { startAt: "first", maxInflight: job.window });
    let n = 0;
    for await (const _msg of sub) {
      if (++n === job.count) break;
    }
    meter.stop();
    await sc.close();
    return meter.throughput(n);
  },

  async e2e(job, meter) {
    const sc = await open(job);
    const sub = await sc.subscribe(job.subject, { maxInflight: 1024 });
    const lat = new Float64Array(job.count);
    let n = 0;
    const received = (async () => {
      for await (const msg of sub) {
        const d = msg.data;
        const sent = new DataView(d.buffer, d.byteOffset, d.byteLength).getFloat64(0, true);
        lat[n] = (performance.now() - sent) * 1000;
        if (++n === job.count) break;
      }
    })();
    meter.start();
    let failed: unknown;
    const onError = (err: unknown): void => {
      failed ??= err;
    };
    const acks: Promise<unknown>[] = [];
    await paced(job.count, job.rate, (_i) => {
      const data = payload(job.size);
      new DataView(data.buffer).setFloat64(0, performance.now(), true);
      acks.push(sc.publishAsync(job.subject, data).then((s) => s.acked.catch(onError), onError));
    });
    await received;
    meter.stop();
    await Promise.all(acks); // the server delivers before it acks: close only once every ack is in
    await sc.close();
    if (failed) throw failed;
    return meter.latency(lat, n);
  },
};

/** stan-ts publishing the whole run with one `publishBatch` call (publish figures only). */
export const stanTsBatch: ClientAdapter = {
  async publish(job, meter) {
    const sc = await open(job);
    const messages = new Array<Uint8Array>(job.count).fill(payload(job.size));
    meter.start();
    const { failures } = await sc.publishBatch(job.subject, messages);
    meter.stop();
    await sc.close();
    if (failures.length > 0) throw failures[0]?.error;
    return meter.throughput(job.count);
  },
};

/** stan-ts on JetStream (`backend: jetstream()`, memory streams): the same code as stanTs. */
export const stanTsJetStream: ClientAdapter = {
  publish: (job, meter) => (stanTs.publish as NonNullable<ClientAdapter["publish"]>)(job, meter),
  sync: (job, meter) => (stanTs.sync as NonNullable<ClientAdapter["sync"]>)(job, meter),
  replay: (job, meter) => (stanTs.replay as NonNullable<ClientAdapter["replay"]>)(job, meter),
};
