/**
 * Command-line parsing of `stan-server` (flags mirror nats-streaming-server's).
 *
 * @internal
 */

import type { LogLevel } from "./logger.js";
import type { ServerOptions } from "./server.js";

/** The `--help` text. */
export const HELP = `Usage: stan-server [options]

Streaming server options:
  -cid, --cluster_id <string>      Cluster ID (default: test-cluster)
  -st,  -store, --store <string>   Store type: MEMORY|FILE (default: MEMORY)
  -dir, --dir <string>             Root directory of the file store
  --file_sync <bool>               fsync the file store on each flush (default: true)
  -mc,  --max_channels <int>       Max number of channels, 0 = unlimited (default: 100)
  -msu, --max_subs <int>           Max subscriptions per channel (default: 1000)
  -mm,  --max_msgs <int>           Max messages per channel (default: 1000000)
  -mb,  --max_bytes <size>         Max bytes per channel, e.g. 1GB (default: 1024000000)
  -ma,  --max_age <duration>       Max message age, e.g. 1h, 0 = unlimited (default: 0)
  -mi,  --max_inactivity <duration> Delete channels inactive this long (default: 0 = never)
  -hbi, --hb_interval <duration>   Interval between server heartbeats (default: 30s)
  -hbt, --hb_timeout <duration>    Heartbeat response timeout (default: 10s)
  -hbf, --hb_fail_count <int>      Failed heartbeats before closing a client (default: 10)
  --discover_prefix <string>       Discover subject prefix (default: _STAN.discover)
  --replace_durable <bool>         Replace an online durable on a new request (default: false)

NATS options:
  -ns,  --nats_server <url>        Attach to this NATS server instead of starting one
  -a,   --addr <host>              Host for the started nats-server (default: 127.0.0.1)
  -p,   --port <int>               Port for the started nats-server (default: free port;
                                   ignored with -ns, as nats-streaming-server does)
  Every other nats-server 2.9 flag is passed to the started nats-server, for example
  --cluster, --routes, --cluster_name, --user/--pass, --auth, --tls, --tlscert, --tlskey,
  --tlsverify, --tlscacert, -m/--http_port, -ms/--https_port, -c/--config, -P/--pid,
  -n/--name, -js, -sd. They are refused with -ns (there is no nats-server to pass them to).

Logging:
  -l, --log_level <level>          trace|debug|info|warn|error|silent (default: info)
  -D, -SD                          Debug logging
  -V, -SV                          Trace logging

Other:
  -h, --help                       Show this help
  -v, --version                    Show the version
`;

/** Parses "30s", "100ms", "2m", "1h", "1.5s" or a bare number of seconds into ms. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new Error(`invalid duration "${text}"`);
  const n = Number(m[1]);
  const mult: Record<string, number> = {
    ns: 1e-6,
    us: 1e-3,
    µs: 1e-3,
    ms: 1,
    s: 1000,
    m: 60_000,
    h: 3_600_000,
  };
  return Math.round(n * (mult[m[2] ?? "s"] ?? 1000));
}

/** Parses "1024", "10KB", "1MB", "1GB" into bytes. */
export function parseSize(text: string): number {
  const m = /^(\d+)\s*(b|kb?|mb?|gb?|tb?)?$/i.exec(text.trim());
  if (!m) throw new Error(`invalid size "${text}"`);
  const unit = (m[2] ?? "b").toLowerCase()[0] ?? "b";
  const mult: Record<string, number> = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
  return Number(m[1]) * (mult[unit] ?? 1);
}

function parseInteger(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n)) throw new Error(`invalid integer "${text}"`);
  return n;
}

type Setter = (o: ServerOptions, v: string) => void;

const FLAGS: Record<string, Setter> = {};
function flag(names: string[], set: Setter): void {
  for (const n of names) FLAGS[n] = set;
}
flag(["cid", "cluster_id"], (o, v) => {
  o.clusterId = v;
});
flag(["st", "store"], (o, v) => {
  const t = v.toUpperCase();
  if (t !== "MEMORY" && t !== "FILE") throw new Error(`unsupported store type "${v}"`);
  o.store = t;
});
flag(["dir"], (o, v) => {
  o.dir = v;
});
flag(["file_sync"], (o, v) => {
  o.fileSync = v !== "false" && v !== "0";
});
flag(["mc", "max_channels"], (o, v) => {
  o.maxChannels = parseInteger(v);
});
flag(["msu", "max_subs"], (o, v) => {
  o.maxSubsPerChannel = parseInteger(v);
});
flag(["mm", "max_msgs"], (o, v) => {
  o.maxMsgs = parseInteger(v);
});
flag(["mb", "max_bytes"], (o, v) => {
  o.maxBytes = parseSize(v);
});
flag(["ma", "max_age"], (o, v) => {
  o.maxAge = parseDuration(v);
});
flag(["mi", "max_inactivity"], (o, v) => {
  o.maxInactivity = parseDuration(v);
});
flag(["hbi", "hb_interval"], (o, v) => {
  o.hbInterval = parseDuration(v);
});
flag(["hbt", "hb_timeout"], (o, v) => {
  o.hbTimeout = parseDuration(v);
});
flag(["hbf", "hb_fail_count"], (o, v) => {
  o.hbFailCount = parseInteger(v);
});
flag(["replace_durable"], (o, v) => {
  o.replaceDurable = v !== "false" && v !== "0";
});
flag(["discover_prefix"], (o, v) => {
  o.discoverPrefix = v;
});
flag(["ns", "nats_server"], (o, v) => {
  o.natsUrl = v;
});
flag(["p", "port"], (o, v) => {
  o.natsPort = parseInteger(v);
});
flag(["l", "log_level"], (o, v) => {
  o.logLevel = v as LogLevel;
});

/** nats-server 2.9 flags taking a value, passed through to the started nats-server. */
const NATS_VALUE = new Set([
  "a",
  "addr",
  "net",
  "P",
  "pid",
  "m",
  "http_port",
  "ms",
  "https_port",
  "c",
  "config",
  "n",
  "name",
  "server_name",
  "client_advertise",
  "ports_file_dir",
  "log",
  "log_file",
  "r",
  "remote_syslog",
  "log_size_limit",
  "max_traced_msg_len",
  "user",
  "pass",
  "auth",
  "tlscert",
  "tlskey",
  "tlscacert",
  "routes",
  "cluster",
  "cluster_listen",
  "cluster_name",
  "cluster_advertise",
  "connect_retries",
  "sd",
  "store_dir",
  "profile",
]);
/** nats-server 2.9 boolean flags (`--tls` or `--tls=false`), passed through. */
const NATS_BOOL = new Set([
  "T",
  "logtime",
  "s",
  "syslog",
  "tls",
  "tlsverify",
  "no_advertise",
  "js",
  "jetstream",
]);

/** Parses command-line arguments into {@link ServerOptions}. */
export function parseArgs(argv: string[]): ServerOptions | "help" | "version" {
  const o: ServerOptions = { logLevel: "info" };
  const passed: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!;
    const eq = raw.indexOf("=");
    const name = (eq >= 0 ? raw.slice(0, eq) : raw).replace(/^--?/, "");
    if (name === "h" || name === "help") return "help";
    if (name === "v" || name === "version") return "version";
    if (name === "D" || name === "SD") {
      o.logLevel = "debug";
      continue;
    }
    if (name === "V" || name === "SV" || name === "DV" || name === "SDV") {
      o.logLevel = "trace";
      continue;
    }
    if (NATS_BOOL.has(name) || NATS_VALUE.has(name)) {
      const dash = raw.startsWith("--") ? "--" : "-";
      const args = [...(o.natsArgs ?? [])];
      o.natsArgs = args;
      if (NATS_BOOL.has(name) || eq >= 0)
        args.push(`${dash}${name}${eq >= 0 ? raw.slice(eq) : ""}`);
      else {
        const value = argv[++i];
        if (value === undefined) throw new Error(`flag "${raw}" needs a value`);
        args.push(`${dash}${name}`, value);
      }
      passed.push(raw);
      continue;
    }
    const set = FLAGS[name];
    if (!set) throw new Error(`unknown flag "${raw}" (see --help)`);
    let value: string | undefined;
    if (eq >= 0) value = raw.slice(eq + 1);
    else value = argv[++i];
    if (value === undefined) throw new Error(`flag "${raw}" needs a value`);
    set(o, value);
  }
  if (o.natsUrl !== undefined && passed.length > 0) {
    throw new Error(
      `${passed.join(", ")}: nats-server option(s) cannot be used with -ns/--nats_server ` +
        "(no nats-server is started; configure the external one instead)",
    );
  }
  return o;
}
