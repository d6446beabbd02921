/**
 * One measurement in its own process, so that RSS is the client's own and one client's garbage
 * collection never disturbs another's. Started by bench/run.ts with the job as argv[2]; replies
 * with one {@link WorkerReply} over IPC and exits.
 */
import { createMeter } from "./lib/meter.js";
import type { ClientAdapter, ClientName, Job, Sample, WorkerReply } from "./lib/types.js";

async function adapter(name: ClientName): Promise<ClientAdapter> {
  switch (name) {
    case "stan-ts":
      return (await import("./clients/stan-ts.js")).stanTs;
    case "stan-ts-batch":
      return (await import("./clients/stan-ts.js")).stanTsBatch;
    case "node-nats-streaming":
      return (await import("./clients/node-nats-streaming.js")).nodeNatsStreaming;
    case "go":
      return (await import("./clients/go.js")).goClient;
    case "nats":
      return (await import("./clients/nats.js")).rawNats;
    case "stan-raw":
      return (await import("./clients/stan-raw.js")).stanRaw;
    case "stan-ts-jetstream":
      return (await import("./clients/stan-ts.js")).stanTsJetStream;
    case "nats-jetstream":
      return (await import("./clients/nats-jetstream.js")).natsJetStream;
  }
}

async function measure(job: Job): Promise<Sample> {
  const a = await adapter(job.client);
  const fn =
    job.figure === "sync"
      ? a.sync
      : job.figure === "replay"
        ? a.replay
        : job.figure === "e2e"
          ? a.e2e
          : a.publish;
  if (!fn) throw new Error(`${job.client} has no ${job.figure} measurement`);
  return fn.call(a, job, createMeter());
}

function reply(msg: WorkerReply): void {
  if (!process.send) {
    process.stdout.write(`${JSON.stringify(msg)}\n`);
    process.exit(0);
  }
  process.send(msg, () => process.exit(0));
}

const arg = process.argv[2];
if (!arg) {
  process.stderr.write("usage: worker.ts '<job json>' (started by bench/run.ts)\n");
  process.exit(2);
}
measure(JSON.parse(arg) as Job).then(
  (sample) => reply({ ok: true, sample }),
  (err: unknown) =>
    reply({ ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
);
