/**
 * The streams, environment and cancellation a command runs with, so that commands can run
 * in-process (tests) as well as from the `stan` binary.
 */

/** A text sink such as `process.stdout`. */
export interface OutputStream {
  /** Writes text; `callback` runs once the stream has taken it. */
  write(chunk: string, callback?: (error?: Error | null) => void): boolean;
  /** True when it is a terminal (progress bars are drawn only there unless forced). */
  readonly isTTY?: boolean | undefined;
}

/** What a command reads, writes and watches. Every field but the streams has a default. */
export interface CliIO {
  /** Results: guids, messages, the bench summary. */
  stdout: OutputStream;
  /** Diagnostics: errors, hints, progress, "subscribed" notices. */
  stderr: OutputStream;
  /** Lines for `stan pub <subject> -`. @default no input */
  stdin?: AsyncIterable<string | Uint8Array> | undefined;
  /** Environment (NATS_URL, STAN_CLUSTER_ID). @default {} */
  env?: Record<string, string | undefined> | undefined;
  /** Aborted on Ctrl-C: long-running commands stop cleanly. */
  signal?: AbortSignal | undefined;
}

/** A command-line mistake: exit code 2, with a pointer to the command's help. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** A runtime failure with an optional hint on how to fix it: exit code 1. */
export class CliError extends Error {
  override name = "CliError";
  /** What the user can do about it. */
  readonly hint: string | undefined;

  /** `message` is printed as is (or after `stan <command>: `), `hint` on a line of its own. */
  constructor(message: string, hint?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.hint = hint;
  }
}

/** Writes text and resolves once the stream has taken it (backpressure, ordering). */
export function write(stream: OutputStream, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(text, (err) => (err ? reject(err) : resolve()));
  });
}

/** Splits a byte or text stream into lines (without their `\n` or `\r\n`). */
export async function* lines(input: AsyncIterable<string | Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let rest = "";
  for await (const chunk of input) {
    rest += typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true });
    let nl = rest.indexOf("\n");
    while (nl >= 0) {
      yield stripCr(rest.slice(0, nl));
      rest = rest.slice(nl + 1);
      nl = rest.indexOf("\n");
    }
  }
  rest += decoder.decode();
  if (rest.length > 0) yield stripCr(rest);
}

function stripCr(line: string): string {
  return line.endsWith("\r") ? line.slice(0, -1) : line;
}

/** Resolves when the signal is aborted (never when there is none). */
export function aborted(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (!signal) return;
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

/** Iterates `source` until the signal is aborted, without waiting for its next item then. */
export async function* untilAborted<T>(
  source: AsyncIterable<T>,
  signal: AbortSignal | undefined,
): AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]();
  const stop = aborted(signal).then((): IteratorResult<T> => ({ value: undefined, done: true }));
  try {
    for (;;) {
      const r = await Promise.race([it.next(), stop]);
      if (r.done) return;
      yield r.value;
    }
  } finally {
    void it.return?.()?.catch(() => {});
  }
}
