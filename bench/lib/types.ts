/** What the orchestrator (bench/run.ts) and a client child (bench/worker.ts) exchange. */

/**
 * The clients measured side by side. `stan-ts-batch` is stan-ts publishing with
 * `publishBatch`; `stan-raw` is the server's own ceiling (see clients/stan-raw.ts); `go` is the
 * official Go client, stan.go (clients/go.ts), measured when interop/build.sh has built it.
 */
export type ClientName =
  | "stan-ts"
  | "stan-ts-batch"
  | "node-nats-streaming"
  | "go"
  | "nats"
  | "stan-raw"
  /** stan-ts with `backend: jetstream()`, on a nats-server with JetStream. */
  | "stan-ts-jetstream"
  /** raw `nats` 2.x JetStream API on that server. */
  | "nats-jetstream";

/** The figures of issue 6. */
export type FigureName = "pub128" | "pub1k" | "pub64k" | "sync" | "replay" | "e2e";

export type FigureKind = "throughput" | "latency";

/** One measurement done by one child process. */
export interface Job {
  client: ClientName;
  figure: FigureName;
  kind: FigureKind;
  /** NATS URL of the server under test. */
  url: string;
  clusterId: string;
  clientId: string;
  subject: string;
  /** Messages to publish, replay or time. */
  count: number;
  /** Payload bytes. */
  size: number;
  /** Publishes awaiting their ack at most (async publish), or the subscription's maxInflight (replay). */
  window: number;
  /** Messages per second (e2e only). */
  rate: number;
  /** JetStream clients: the stream to replay (raw nats JetStream). */
  stream?: string;
}

/** What a child reports. Durations are microseconds, sizes bytes. */
export interface Sample {
  /** Messages per second, for throughput figures. */
  msgsPerSec?: number;
  /** Per-message latencies, for latency figures. */
  p50Us?: number;
  p99Us?: number;
  maxUs?: number;
  /** Highest process.memoryUsage.rss() seen by the sampler during the measurement. */
  peakRss: number;
  /** The V8 heap when that peak was seen (bytes; new and old space as reserved). */
  heapAtPeak?:
    | { heapTotal: number; heapUsed: number; external: number; newSpace: number; oldSpace: number }
    | undefined;
  /** RSS once connected, before the measurement. */
  startRss: number;
  /** The kernel's peak RSS of the child (getrusage maxrss), for comparison. */
  maxRss: number;
  elapsedMs: number;
  count: number;
  /** CPU time (user + system) the child used during the measurement. */
  cpuUs: number;
  /** CPU time the orchestrator (in embedded mode: the streaming server) used during the job; set by run.ts. */
  serverCpuUs?: number;
}

/** A child's message to its parent. */
export type WorkerReply = { ok: true; sample: Sample } | { ok: false; error: string };

/** A client adapter: one function per figure kind. Each connects, measures, and disconnects. */
export interface ClientAdapter {
  /** Windowed async publish: `job.count` messages of `job.size` bytes, `job.window` unacked at most. */
  publish?(job: Job, meter: Meter): Promise<Sample>;
  /** Sequential publishes, each awaited: per-publish latency. */
  sync?(job: Job, meter: Meter): Promise<Sample>;
  /** Replays `job.count` stored messages from the first. */
  replay?(job: Job, meter: Meter): Promise<Sample>;
  /** Publish -> delivery latency at `job.rate` messages per second. */
  e2e?(job: Job, meter: Meter): Promise<Sample>;
}

/** Samples RSS while a measurement runs. */
export interface Meter {
  /** Starts sampling and the clock; returns the RSS at start. */
  start(): void;
  /** Stops sampling and the clock. */
  stop(): void;
  /** Samples RSS now (call at points where the heap is likely largest). */
  sample(): void;
  /** Builds a throughput sample. */
  throughput(count: number): Sample;
  /** Builds a latency sample from per-message latencies in microseconds. */
  latency(latenciesUs: Float64Array, count: number): Sample;
}
