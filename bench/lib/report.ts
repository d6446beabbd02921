import { type Spread, spread } from "./stats.js";
import type { ClientName, FigureKind, FigureName, Sample } from "./types.js";

/** A figure as the report needs it. */
export interface FigureInfo {
  name: FigureName;
  title: string;
  kind: FigureKind;
  count: number;
  size: number;
}

/** A measured run as the report needs it. */
export interface RunInfo {
  figure: FigureName;
  client: ClientName;
  sample: Sample;
}

type Metric =
  | "msgsPerSec"
  | "peakRss"
  | "heapNew"
  | "heapOld"
  | "p50Us"
  | "p99Us"
  | "cpuPerMsg"
  | "serverCpuPerMsg";

/** A metric's value in a sample, in the unit of its row. */
function value(s: Sample, metric: Metric): number {
  switch (metric) {
    case "peakRss":
      return s.peakRss / 2 ** 20;
    case "heapNew":
      return s.heapAtPeak ? s.heapAtPeak.newSpace / 2 ** 20 : Number.NaN;
    case "heapOld":
      return s.heapAtPeak ? s.heapAtPeak.oldSpace / 2 ** 20 : Number.NaN;
    case "cpuPerMsg":
      return s.cpuUs / s.count;
    case "serverCpuPerMsg":
      return s.serverCpuUs === undefined ? Number.NaN : s.serverCpuUs / s.count;
    default:
      return s[metric] ?? Number.NaN;
  }
}

/** A target of issue 6 point 2: stan-ts / node-nats-streaming against a bound. */
export interface Target {
  op: ">=" | "<=";
  ratio: number;
}

/** One line of the table. */
export interface Row {
  figure: FigureName;
  label: string;
  metric: Metric;
  unit: string;
  cells: Partial<Record<ClientName, Spread>>;
  /** Median stan-ts / median node-nats-streaming. */
  ratio: number;
  /** Median stan-ts publishBatch / median node-nats-streaming (publish figures). */
  batchRatio: number;
  /** Median stan-ts / median official Go client (NaN where Go was not measured). */
  goRatio: number;
  target?: Target;
  holds?: boolean;
}

const TARGETS: Partial<Record<`${FigureName}.${Metric}`, Target>> = {
  "pub128.msgsPerSec": { op: ">=", ratio: 3 },
  "pub128.peakRss": { op: "<=", ratio: 0.5 },
  "replay.msgsPerSec": { op: ">=", ratio: 1.5 },
  "sync.p50Us": { op: "<=", ratio: 0.7 },
};

const CLIENTS: ClientName[] = [
  "stan-ts",
  "stan-ts-batch",
  "node-nats-streaming",
  "go",
  "nats",
  "stan-raw",
];

function count(n: number): string {
  return n >= 1000 && n % 1000 === 0 ? `${n / 1000}k` : String(n);
}

function size(n: number): string {
  return n >= 1024 ? `${n / 1024} KiB` : `${n} B`;
}

/** Medians and spreads per figure, metric and client, with the ratios and targets. */
export function summarize(figures: FigureInfo[], runs: RunInfo[]): Row[] {
  const rows: Row[] = [];
  for (const f of figures) {
    const metrics: Array<[Metric, string, string]> =
      f.kind === "throughput"
        ? [
            ["msgsPerSec", f.name === "replay" ? "msgs/s" : "msgs/s (acked)", "msgs/s"],
            ["peakRss", "peak RSS", "MB"],
            ...(f.name === "pub128"
              ? ([
                  ["heapNew", "V8 young generation at the RSS peak", "MB"],
                  ["heapOld", "V8 old space at the RSS peak", "MB"],
                ] as Array<[Metric, string, string]>)
              : []),
            ["cpuPerMsg", "client CPU per msg", "us"],
            ["serverCpuPerMsg", "server CPU per msg", "us"],
          ]
        : [
            ["p50Us", "p50", "us"],
            ["p99Us", "p99", "us"],
          ];
    const what =
      f.name === "sync"
        ? `sync publish, ${count(f.count)} sequential`
        : f.name === "e2e"
          ? `publish -> delivery, ${count(f.count)} at 2k/s`
          : f.name === "replay"
            ? `replay ${count(f.count)} x ${size(f.size)}, maxInflight 16k`
            : `async publish ${count(f.count)} x ${size(f.size)}, window 16k`;
    for (const [metric, name, unit] of metrics) {
      const cells: Partial<Record<ClientName, Spread>> = {};
      for (const c of CLIENTS) {
        const values = runs
          .filter((r) => r.figure === f.name && r.client === c)
          .map((r) => value(r.sample, metric));
        if (values.length > 0) cells[c] = spread(values);
      }
      const a = cells["stan-ts"]?.median ?? Number.NaN;
      const b = cells["node-nats-streaming"]?.median ?? Number.NaN;
      const ratio = a / b;
      const batchRatio = (cells["stan-ts-batch"]?.median ?? Number.NaN) / b;
      const goRatio = a / (cells.go?.median ?? Number.NaN);
      const row: Row = {
        figure: f.name,
        label: `${what}: ${name}`,
        metric,
        unit,
        cells,
        ratio,
        batchRatio,
        goRatio,
      };
      const target = TARGETS[`${f.name}.${metric}`];
      if (target) {
        row.target = target;
        row.holds = target.op === ">=" ? ratio >= target.ratio : ratio <= target.ratio;
      }
      rows.push(row);
    }
  }
  return rows;
}

function num(v: number, unit: string): string {
  if (!Number.isFinite(v)) return "-";
  if (unit === "msgs/s") {
    return v >= 10_000 ? `${(v / 1000).toFixed(0)}k` : `${(v / 1000).toFixed(1)}k`;
  }
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

function cell(s: Spread | undefined, unit: string): string {
  if (!s || s.n === 0) return "-";
  const m = num(s.median, unit);
  return s.n === 1 ? m : `${m} (${num(s.min, unit)}-${num(s.max, unit)})`;
}

/** Run facts printed above the table. */
export interface ReportMeta {
  command: string;
  mode: string;
  server: string;
  machine: {
    cpus: number;
    cpu: string;
    node: string;
    platform: string;
    memoryGiB: number;
    loadAtStart: number[];
  };
  loadAtEnd: number[];
  rounds: number;
  warmupRounds: number;
  elapsedS: number;
}

/** The Markdown report: the table, the targets and the server's own figures. */
export function renderMarkdown(meta: ReportMeta, rows: Row[]): string {
  const out: string[] = [];
  const m = meta.machine;
  out.push(
    `Server: ${meta.server}. Machine: ${m.cpus} x ${m.cpu}, ${m.memoryGiB} GiB, ${m.platform}, Node ${m.node}; load average ${m.loadAtStart[0]} at start, ${meta.loadAtEnd[0]} at end.`,
    `Median of ${meta.rounds} round(s) (min-max) after ${meta.warmupRounds} warm-up round(s), each client in its own process; \`${meta.command}\`, ${meta.elapsedS.toFixed(0)} s.`,
    "",
  );
  // the Go client's columns only when it was measured (interop/build.sh built its tool)
  const withGo = rows.some((r) => r.cells.go !== undefined);
  out.push(
    `| figure | unit | stan-ts | node-nats-streaming | stan-ts / nns | target |${withGo ? " Go (stan.go) | stan-ts / Go |" : ""} stan-ts publishBatch | batch / nns | raw nats (ceiling) | server ceiling (raw protocol) |`,
    `|---|---|---:|---:|---:|---|${withGo ? "---:|---:|" : ""}---:|---:|---:|---:|`,
  );
  const times = (x: number): string => (Number.isFinite(x) ? `${x.toFixed(2)}x` : "-");
  for (const r of rows) {
    const target = r.target
      ? `${r.target.op} ${r.target.ratio}x: ${r.holds ? "**holds**" : "**misses**"}`
      : "";
    const go = withGo ? ` ${cell(r.cells.go, r.unit)} | ${times(r.goRatio)} |` : "";
    out.push(
      `| ${r.label} | ${r.unit} | ${cell(r.cells["stan-ts"], r.unit)} | ${cell(r.cells["node-nats-streaming"], r.unit)} | ${times(r.ratio)} | ${target} |${go} ${cell(r.cells["stan-ts-batch"], r.unit)} | ${times(r.batchRatio)} | ${cell(r.cells.nats, r.unit)} | ${cell(r.cells["stan-raw"], r.unit)} |`,
    );
  }
  const pub = rows.find((r) => r.figure === "pub128" && r.metric === "msgsPerSec");
  const nns = pub?.cells["node-nats-streaming"]?.median;
  const raw = pub?.cells["stan-raw"]?.median;
  if (nns !== undefined) {
    out.push(
      "",
      `Streaming server's own throughput (${meta.mode}): node-nats-streaming publish->PubAck ${num(nns, "msgs/s")} msgs/s${raw !== undefined ? `; raw-protocol publisher (no client work) ${num(raw, "msgs/s")} msgs/s` : ""}. The targets' reference, ~67k msgs/s for node-nats-streaming against nats-streaming-server 0.25.6, was measured on another machine; ${meta.mode === "binary" ? "the comparison below runs both servers in the same rounds on this one." : "`NATS_STREAMING_SERVER=<binary> pnpm bench` runs both servers in the same rounds on this one."}`,
    );
  }
  out.push(
    "",
    "stan-ts: `publishAsync` per message, as in the README; stan-ts publishBatch: the whole run in one `publishBatch` call (same window); the targets are judged on the first. " +
      (withGo
        ? "Go (stan.go): the official Go client v0.10.4 in its own process (interop/go, `PublishAsync` with the same window, `Publish`, a deliver-all subscription); its peak RSS and CPU are the Go process's (getrusage), with no JavaScript runtime in them. "
        : "No Go column: `bash interop/build.sh` builds the official Go client's tool. ") +
      "raw nats: `nats` 2.x on the same nats-server without the streaming server (publish: no acks; sync: publish + flush round trip; e2e: core pub/sub). " +
      "Server ceiling: the streaming protocol spoken with pre-encoded messages and no client bookkeeping, so only the server limits it.",
    "",
  );
  return out.join("\n");
}

/**
 * Against a binary, the same publish test (pub128) against the embedded server in the same
 * rounds: issue 6 point 4 (node-nats-streaming's publish throughput against the embedded
 * server >= against the real one), with the other publishers for context.
 */
export function renderComparison(binaryRuns: RunInfo[], embeddedRuns: RunInfo[]): string {
  const pick = (runs: RunInfo[], c: ClientName, metric: Metric): Spread =>
    spread(
      runs
        .filter((r) => r.figure === "pub128" && r.client === c)
        .map((r) => value(r.sample, metric)),
    );
  const out: string[] = [
    "",
    "Server comparison, same rounds: async publish 100k x 128 B, window 16k, against nats-streaming-server (binary) and @stan-ts/server (embedded, memory store).",
    "",
    "| client | binary: msgs/s | embedded: msgs/s | embedded / binary | binary: server CPU per msg (us) | embedded: server CPU per msg (us) |",
    "|---|---:|---:|---:|---:|---:|",
  ];
  const clients = [...new Set(embeddedRuns.map((r) => r.client))];
  for (const c of clients) {
    const b = pick(binaryRuns, c, "msgsPerSec");
    const e = pick(embeddedRuns, c, "msgsPerSec");
    out.push(
      `| ${c} | ${cell(b, "msgs/s")} | ${cell(e, "msgs/s")} | ${(e.median / b.median).toFixed(2)}x | ${cell(pick(binaryRuns, c, "serverCpuPerMsg"), "us")} | ${cell(pick(embeddedRuns, c, "serverCpuPerMsg"), "us")} |`,
    );
  }
  const nb = pick(binaryRuns, "node-nats-streaming", "msgsPerSec").median;
  const ne = pick(embeddedRuns, "node-nats-streaming", "msgsPerSec").median;
  if (Number.isFinite(nb) && Number.isFinite(ne)) {
    out.push(
      "",
      `Target "the embedded server serves node-nats-streaming at least as fast as the Go server": node-nats-streaming publish->PubAck against the embedded server ${num(ne, "msgs/s")} msgs/s vs ${num(nb, "msgs/s")} against the binary: ${ne >= nb ? "**holds**" : "**misses**"} (${(ne / nb).toFixed(2)}x).`,
    );
  }
  out.push("");
  return out.join("\n");
}
