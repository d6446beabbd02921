import stan from "node-nats-streaming";
import { paced, payload } from "../lib/meter.js";
import type { ClientAdapter, Job } from "../lib/types.js";

type Stan = ReturnType<typeof stan.connect>;

/** The part of node-nats-streaming's Message the bench reads (the class is not exported). */
interface NnsMessage {
  getRawData(): Buffer;
}

function open(job: Job): Promise<Stan> {
  const sc = stan.connect(job.clusterId, job.clientId, {
    url: job.url,
    maxPubAcksInflight: Math.max(job.window, 1),
  });
  return new Promise((resolve, reject) => {
    sc.once("connect", () => resolve(sc));
    sc.once("error", reject);
  });
}

function close(sc: Stan): Promise<void> {
  return new Promise((resolve) => {
    sc.once("close", () => resolve());
    sc.close();
  });
}

/** The official Node client (callback API), used as its README shows. */
export const nodeNatsStreaming: ClientAdapter = {
  async publish(job, meter) {
    const sc = await open(job);
    const data = Buffer.from(payload(job.size));
    const window = job.window;
    meter.start();
    await new Promise<void>((resolve, reject) => {
      let sent = 0;
      let acked = 0;
      const onAck = (err: Error | undefined): void => {
        if (err) {
          reject(err);
          return;
        }
        acked++;
        if (acked === job.count) resolve();
        else if (sent < job.count) pump();
      };
      const pump = (): void => {
        while (sent < job.count && sent - acked < window) {
          sent++;
          sc.publish(job.subject, data, onAck);
        }
      };
      pump();
      meter.sample();
    });
    meter.stop();
    await close(sc);
    return meter.throughput(job.count);
  },

  async sync(job, meter) {
    const sc = await open(job);
    const data = Buffer.from(payload(job.size));
    const lat = new Float64Array(job.count);
    const publish = (): Promise<void> =>
      new Promise((resolve, reject) => {
        sc.publish(job.subject, data, (err) => (err ? reject(err) : resolve()));
      });
    await publish();
    meter.start();
    for (let i = 0; i < job.count; i++) {
      const t = performance.now();
      await publish();
      lat[i] = (performance.now() - t) * 1000;
    }
    meter.stop();
    await close(sc);
    return meter.latency(lat, job.count);
  },

  async replay(job, meter) {
    const sc = await open(job);
    meter.start();
    const opts = sc.subscriptionOptions().setDeliverAllAvailable().setMaxInFlight(job.window);
    const sub = sc.subscribe(job.subject, opts);
    let n = 0;
    await new Promise<void>((resolve, reject) => {
      sub.once("error", reject);
      sub.on("message", () => {
        if (++n === job.count) resolve();
      });
    });
    meter.stop();
    sub.removeAllListeners("message");
    await close(sc);
    return meter.throughput(n);
  },

  async e2e(job, meter) {
    const sc = await open(job);
    const opts = sc.subscriptionOptions().setMaxInFlight(1024);
    const sub = sc.subscribe(job.subject, opts);
    await new Promise<void>((resolve, reject) => {
      sub.once("ready", () => resolve());
      sub.once("error", reject);
    });
    const lat = new Float64Array(job.count);
    let n = 0;
    const received = new Promise<void>((resolve) => {
      sub.on("message", (msg: NnsMessage) => {
        if (n >= job.count) return;
        lat[n] = (performance.now() - msg.getRawData().readDoubleLE(0)) * 1000;
        if (++n === job.count) resolve();
      });
    });
    let failed: Error | undefined;
    let acked = 0;
    let allAcked!: () => void;
    const acks = new Promise<void>((resolve) => {
      allAcked = resolve;
    });
    meter.start();
    await paced(job.count, job.rate, () => {
      const data = Buffer.from(payload(job.size));
      data.writeDoubleLE(performance.now(), 0);
      sc.publish(job.subject, data, (err) => {
        if (err) failed ??= err;
        if (++acked === job.count) allAcked();
      });
    });
    await received;
    meter.stop();
    await acks; // the server delivers before it acks: close only once every ack is in
    sub.removeAllListeners("message");
    await close(sc);
    if (failed) throw failed;
    return meter.latency(lat, n);
  },
};
