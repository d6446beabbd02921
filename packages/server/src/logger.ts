/** Log levels, most verbose first. */
export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "silent";

/** Structured fields attached to a log line. */
export type LogFields = Record<string, string | number | boolean | bigint | undefined>;

/**
 * A structured logger. The default writes one JSON object per line to stderr; pass your
 * own to route logs elsewhere (pino and similar loggers fit this shape through a wrapper).
 */
export interface Logger {
  /** Logs at `trace` level, the most verbose. */
  trace(msg: string, fields?: LogFields): void;
  /** Logs at `debug` level. */
  debug(msg: string, fields?: LogFields): void;
  /** Logs at `info` level. */
  info(msg: string, fields?: LogFields): void;
  /** Logs at `warn` level. */
  warn(msg: string, fields?: LogFields): void;
  /** Logs at `error` level, the least verbose. */
  error(msg: string, fields?: LogFields): void;
}

const ORDER: Record<LogLevel, number> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  silent: 100,
};

/**
 * Creates the default JSON-lines logger writing to `write` (stderr by default).
 *
 * @param level - lines below this level are dropped. @default "info"
 */
export function createLogger(
  level: LogLevel = "info",
  write: (line: string) => void = (line) => process.stderr.write(line),
): Logger {
  const min = ORDER[level];
  const emit =
    (lvl: Exclude<LogLevel, "silent">) =>
    (msg: string, fields?: LogFields): void => {
      if (ORDER[lvl] < min) return;
      const rec: Record<string, unknown> = { time: new Date().toISOString(), level: lvl, msg };
      if (fields) {
        for (const [k, v] of Object.entries(fields)) {
          if (v !== undefined) rec[k] = typeof v === "bigint" ? v.toString() : v;
        }
      }
      write(`${JSON.stringify(rec)}\n`);
    };
  return {
    trace: emit("trace"),
    debug: emit("debug"),
    info: emit("info"),
    warn: emit("warn"),
    error: emit("error"),
  };
}
