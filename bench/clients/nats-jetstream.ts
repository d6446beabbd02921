import { AckPolicy, connect, DeliverPolicy, type NatsConnection, StorageType } from "nats";
import { payload } from "../lib/meter.js";
import type { ClientAdapter, Job } from "../lib/types.js";

function open(job: Job): Promise<NatsConnection> {
  return connect({ servers: job.url, name: job.clientId });
}

/** The stream of a raw-JetStream job: one memory stream per subject, as stan-ts's backend makes. */
async function ensureStream(nc: NatsConnection, subject: string): Promise<string> {
  const name = `raw_${subject.replace(/[^A-Za-z0-9-]/g, "_")}`;
  const jsm = await nc.jetstreamManager();
  await jsm.streams.add({ name, subjects: [subject], storage: StorageType.Memory }).catch(() => {});
  return name;
}

/**
 * Raw `nats` 2.x JetStream, used as its documentation shows, on the same nats-server as
 * stan-ts's JetStream backend: `js.publish` (each a request awaiting the PubAck) with the
 * same window, and a pull consumer with explicit acks for the replay.
 */
export const natsJetStream: ClientAdapter = {
  async publish(job, meter) {
    const nc = await open(job);
    const js = nc.jetstream();
    const stream = await ensureStream(nc, job.subject);
    const data = payload(job.size);
    const window = Math.max(job.window, 1);
    let inflight = 0;
    let failed: unknown;
    let wake: (() => void) | undefined;
    const settled = (): void => {
      inflight--;
      wake?.();
      wake = undefined;
    };
    meter.start();
    for (let i = 0; i < job.count; i++) {
      while (inflight >= window) {
        await new Promise<void>((r) => {
          wake = r;
        });
      }
      inflight++;
      js.publish(job.subject, data, { expect: { streamName: stream } }).then(settled, (err) => {
        failed ??= err;
        settled();
      });
    }
    meter.sample();
    while (inflight > 0) {
      await new Promise<void>((r) => {
        wake = r;
      });
    }
    meter.stop();
    await nc.close();
    if (failed) throw failed;
    return meter.throughput(job.count);
  },

  async sync(job, meter) {
    const nc = await open(job);
    const js = nc.jetstream();
    await ensureStream(nc, job.subject);
    const data = payload(job.size);
    const lat = new Float64Array(job.count);
    await js.publish(job.subject, data);
    meter.start();
    for (let i = 0; i < job.count; i++) {
      const t = performance.now();
      await js.publish(job.subject, data);
      lat[i] = (performance.now() - t) * 1000;
    }
    meter.stop();
    await nc.close();
    return meter.latency(lat, job.count);
  },

  async replay(job, meter) {
    const nc = await open(job);
    const jsm = await nc.jetstreamManager();
    // the stream stan-ts's backend made for the replay channel (see run.ts)
    const stream = job.stream ?? "";
    meter.start();
    const info = await jsm.consumers.add(stream, {
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      max_ack_pending: job.window,
      inactive_threshold: 30_000_000_000,
    });
    const consumer = await nc.jetstream().consumers.get(stream, info.name);
    const messages = await consumer.consume({ max_messages: Math.min(job.window, 1024) });
    let n = 0;
    for await (const m of messages) {
      m.ack();
      if (++n === job.count) break;
    }
    meter.stop(); // leaving the loop stopped the pull (an await of close() after it never settles)
    await jsm.consumers.delete(stream, info.name).catch(() => {});
    await nc.close();
    return meter.throughput(n);
  },
};
