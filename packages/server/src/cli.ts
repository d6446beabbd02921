/**
 * Command-line parsing of `stan-server` (flags mirror nats-streaming-server's).
 *
 * @internal
 */

import { clusterIdProblem } from "@stan-ts/core";
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
  --cluster, --routes, --cluster_name, --cluster_listen, --tls, --tlscert, --tlskey,
  --tlsverify, --tlscacert, -m/--http_port, -ms/--https_port, -c/--config, -P/--pid,
  -n/--name, -js, -sd. They are refused with -ns (there is no nats-server to pass them to).
  The monitoring port (-m, -ms) opens only once the streaming server answers.
  --user <user>, --pass <password>, --auth <token>
                                   Required of clients by the started nats-server, and used
                                   by the streaming server's own connections (with -ns: to
                                   the external server), as nats-streaming-server does
  -tls_client_cert, -tls_client_key, -tls_client_cacert <file>
                                   TLS of the streaming server's own NATS connections

Logging:
  -l, --log <file>                 Append the log to this file instead of stderr
  -l, --log_level <level>          trace|debug|info|warn|error|silent (default: info)
  -D, -SD, --debug, --stan_debug   Debug logging
  -V, -SV, -DV, -SDV, --trace, --stan_trace
                                   Trace logging
  nats-streaming-server's clustering, FT, SQL, encryption and file-store tuning flags are
  recognised and refused with the reason.

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
  const problem = clusterIdProblem(v);
  if (problem !== undefined) throw new Error(problem);
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
const LEVELS = new Set(["trace", "debug", "info", "warn", "error", "silent"]);
flag(["log_level"], (o, v) => {
  if (!LEVELS.has(v))
    throw new Error(`invalid log level "${v}" (trace|debug|info|warn|error|silent)`);
  o.logLevel = v as LogLevel;
});
// The official binary's `-l, --log <file>` redirects the log; stan-server's `-l` also takes a
// level name, as it always has.
flag(["l", "log"], (o, v) => {
  if (LEVELS.has(v)) o.logLevel = v as LogLevel;
  else o.logFile = v;
});
// The embedded nats-server's credentials are the engine's too, as in the Go binary.
flag(["user"], (o, v) => {
  o.natsOptions = { ...o.natsOptions, user: v };
  pass(o, "--user", v);
});
flag(["pass"], (o, v) => {
  o.natsOptions = { ...o.natsOptions, pass: v };
  pass(o, "--pass", v);
});
flag(["auth"], (o, v) => {
  o.natsOptions = { ...o.natsOptions, token: v };
  pass(o, "--auth", v);
});
// The Go binary's client TLS options of its own NATS connections.
flag(["tls_client_key"], (o, v) => {
  o.natsOptions = { ...o.natsOptions, tls: { ...o.natsOptions?.tls, keyFile: v } };
});
flag(["tls_client_cert"], (o, v) => {
  o.natsOptions = { ...o.natsOptions, tls: { ...o.natsOptions?.tls, certFile: v } };
});
flag(["tls_client_cacert"], (o, v) => {
  o.natsOptions = { ...o.natsOptions, tls: { ...o.natsOptions?.tls, caFile: v } };
});

/** stan-server's own boolean flags: `--file_sync`, `--file_sync=false`, `--file_sync false`. */
const BOOLEAN = new Set(["file_sync", "replace_durable"]);

/** Appends a nats-server argument to `o.natsArgs` (a flag stan-server reads too). */
function pass(o: ServerOptions, ...args: string[]): void {
  o.natsArgs = [...(o.natsArgs ?? []), ...args];
}

/**
 * nats-server flags taking a value, passed through to the started nats-server: each one
 * `nats-server --help` of 2.9.10 lists, except `-p` (stan-server's own, as in the Go binary),
 * `-l/--log`, `--user`, `--pass`, `--auth` (read above, then passed on) and the ones in
 * {@link REFUSED}.
 */
const NATS_VALUE = new Set([
  "a",
  "addr",
  "net",
  "n",
  "name",
  "server_name",
  "P",
  "pid",
  "m",
  "http_port",
  "ms",
  "https_port",
  "c",
  "config",
  "client_advertise",
  "ports_file_dir",
  "log_size_limit",
  "max_traced_msg_len",
  "sd",
  "store_dir",
  "tlscert",
  "tlskey",
  "tlscacert",
  "routes",
  "cluster",
  "cluster_name",
  "cluster_advertise",
  "connect_retries",
  "cluster_listen",
  "profile",
]);
/** nats-server 2.9.10 boolean flags (`--tls` or `--tls=false`), passed through. */
const NATS_BOOL = new Set(["T", "logtime", "js", "jetstream", "tls", "tlsverify", "no_advertise"]);

const NO_SYSLOG = "stan-server reads nats-server's log to know it is ready; it cannot go to syslog";
const NO_RAFT = "clustered (Raft) mode is not implemented by stan-server";
const NO_CRYPT = "encryption at rest is not implemented by stan-server";

/**
 * Flags of nats-server 2.9.10 or of nats-streaming-server 0.25.6 that stan-server recognises
 * but does not take, each with the reason shown to the user.
 */
const REFUSED: Record<string, string> = {
  help_tls: "run `nats-server --help_tls`: stan-server passes the --tls* flags to it",
  t: "nats-server's configuration test: run `nats-server -t -c <file>` itself",
  sl: "send the signal to the stan-server process itself (kill -TERM <pid>)",
  signal: "send the signal to the stan-server process itself (kill -TERM <pid>)",
  s: NO_SYSLOG,
  syslog: NO_SYSLOG,
  r: NO_SYSLOG,
  remote_syslog: NO_SYSLOG,
  syslog_name: "Windows event log only",
  sc: "no streaming configuration file: use the flags (or startServer's options)",
  stan_config: "no streaming configuration file: use the flags (or startServer's options)",
  ft_group: "fault-tolerant mode is not implemented by stan-server",
  encrypt: NO_CRYPT,
  encryption_cipher: NO_CRYPT,
  encryption_key: NO_CRYPT,
  secure: "give the CA with -tls_client_cacert instead (verification is not turned off)",
};
for (const name of [
  "clustered",
  "cluster_node_id",
  "cluster_bootstrap",
  "cluster_peers",
  "cluster_log_path",
  "cluster_log_cache_size",
  "cluster_log_snapshots",
  "cluster_trailing_logs",
  "cluster_sync",
  "cluster_raft_logging",
  "cluster_allow_add_remove_node",
]) {
  REFUSED[name] = NO_RAFT;
}
for (const name of [
  "file_compact_enabled",
  "file_compact_frag",
  "file_compact_interval",
  "file_compact_min_size",
  "file_buffer_size",
  "file_crc",
  "file_crc_poly",
  "file_slice_max_msgs",
  "file_slice_max_bytes",
  "file_slice_max_age",
  "file_slice_archive_script",
  "file_fds_limit",
  "file_parallel_recovery",
  "file_truncate_bad_eof",
  "file_read_buffer_size",
  "file_auto_sync",
]) {
  REFUSED[name] = "a tuning option of the Go file store; stan-server's file store has none";
}
for (const name of [
  "sql_driver",
  "sql_source",
  "sql_no_caching",
  "sql_max_open_conns",
  "sql_bulk_insert_limit",
]) {
  REFUSED[name] = "stan-server has no SQL store (MEMORY and FILE only)";
}

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
    // The Go binary's -D/-V (nats-server's log) and -SD/-SV (the streaming log), with an
    // optional =<bool>: stan-server has one log, at the level asked for.
    const on = eq < 0 || !["false", "0"].includes(raw.slice(eq + 1));
    if (["D", "SD", "debug", "stan_debug"].includes(name)) {
      if (on && o.logLevel !== "trace") o.logLevel = "debug";
      continue;
    }
    if (["V", "SV", "DV", "SDV", "VV", "DVV", "trace", "stan_trace"].includes(name)) {
      if (on) o.logLevel = "trace";
      continue;
    }
    const refused = REFUSED[name];
    // `--clustered=false` and the like ask for what stan-server does anyway
    if (refused !== undefined && eq >= 0 && /^(false|0)$/.test(raw.slice(eq + 1))) continue;
    if (refused !== undefined) throw new Error(`flag "${raw}" is not supported: ${refused}`);
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
    else if (BOOLEAN.has(name)) {
      // Go bool flags: bare means true; a following true/false is taken as well
      const next = argv[i + 1];
      value = next !== undefined && /^(true|false|1|0)$/.test(next) ? argv[++i] : "true";
    } else value = argv[++i];
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

/**
 * The address (`127.0.0.1:4222`) in a failed start's error when nats-server could not listen
 * there because something else does; undefined for any other failure.
 */
export function portInUse(message: string): string | undefined {
  return /Error listening on port: (\S+?), .*address already in use/.exec(message)?.[1];
}
