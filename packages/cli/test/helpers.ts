import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { streamingServer } from "@stan-ts/testing";
import { afterAll, beforeAll } from "vitest";
import { type CliIO, type OutputStream, run } from "../src/index.js";

export type TestServer = Awaited<ReturnType<typeof streamingServer>>;

/** One streaming server for the whole test file. */
export function useServer(): () => TestServer {
  let server: TestServer | undefined;
  beforeAll(async () => {
    server = await streamingServer();
  });
  afterAll(async () => {
    await server?.[Symbol.asyncDispose]();
  });
  return () => {
    if (!server) throw new Error("the test server is not started yet");
    return server;
  };
}

let seq = 0;
/** A channel (or name) unique within this test process. */
export function unique(prefix = "ch"): string {
  return `${prefix}-${process.pid}-${++seq}`;
}

/** Collected text of a stream, with a way to wait for what it will print. */
export class Captured implements OutputStream {
  text = "";
  private waiters = new Set<() => void>();

  write(chunk: string, callback?: (error?: Error | null) => void): boolean {
    this.text += chunk;
    for (const w of this.waiters) w();
    callback?.();
    return true;
  }

  /** Complete lines so far. */
  get lines(): string[] {
    const all = this.text.split("\n");
    all.pop();
    return all;
  }

  /** Resolves once `test` holds for the text; rejects after `timeoutMs`. */
  waitFor(test: (text: string) => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      if (test(this.text)) return resolve();
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(
          new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got:\n${this.text}`),
        );
      }, timeoutMs);
      const check = () => {
        if (!test(this.text)) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      this.waiters.add(check);
    });
  }

  /** Resolves once at least `n` lines are complete. */
  waitForLines(n: number, timeoutMs = 10_000): Promise<void> {
    return this.waitFor((t) => lineCount(t) >= n, `${n} lines`, timeoutMs);
  }
}

/** Counts the lines of a text. */
export function lineCount(text: string): number {
  return text.split("\n").length - 1;
}

/** An in-process `stan` run. */
export interface InProcess {
  stdout: Captured;
  stderr: Captured;
  /** Ctrl-C. */
  interrupt(): void;
  /** The exit code. */
  code: Promise<number>;
}

/** Runs `stan` in-process against `server` (its URL and cluster ID come from the environment). */
export function stan(
  argv: string[],
  opts: {
    server?: TestServer;
    stdin?: string[] | AsyncIterable<string>;
    env?: Record<string, string>;
  } = {},
): InProcess {
  const stdout = new Captured();
  const stderr = new Captured();
  const controller = new AbortController();
  const env: Record<string, string> = { ...opts.env };
  if (opts.server) {
    env.NATS_URL = opts.server.url;
    env.STAN_CLUSTER_ID = opts.server.clusterId;
  }
  const io: CliIO = { stdout, stderr, env, signal: controller.signal };
  if (opts.stdin) {
    const chunks = opts.stdin;
    io.stdin = Array.isArray(chunks)
      ? (async function* () {
          yield* chunks;
        })()
      : chunks;
  }
  return { stdout, stderr, interrupt: () => controller.abort(), code: run(argv, io) };
}

/** Runs `stan` in-process to completion. */
export async function stanDone(
  argv: string[],
  opts: Parameters<typeof stan>[1] = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = stan(argv, opts);
  const code = await r.code;
  return { code, stdout: r.stdout.text, stderr: r.stderr.text };
}

/** Waits for `stan sub` to report its subscription. */
export function listening(r: InProcess | Spawned): Promise<void> {
  return r.stderr.waitFor((t) => t.includes("stan: listening on"), "the subscription");
}

const BIN = fileURLToPath(new URL("../src/bin.ts", import.meta.url));

/** A `stan` child process started from the real bin through tsx. */
export interface Spawned {
  child: ChildProcess;
  stdout: Captured;
  stderr: Captured;
  /** Resolves with the exit code (or 128 + signal number), rejects after the timeout. */
  exit(timeoutMs?: number): Promise<number>;
}

/**
 * Spawns `node --import tsx --conditions=@stan-ts/source src/bin.ts ...argv`. `input`, when
 * given, is written to its stdin, which is then closed.
 */
export function spawnStan(
  argv: string[],
  env: Record<string, string | undefined> = {},
  input?: string,
): Spawned {
  // An `undefined` value removes the variable (NATS_URL, for a run on the defaults).
  const fullEnv = Object.fromEntries(
    Object.entries({ ...process.env, ...env }).filter(([, v]) => v !== undefined),
  );
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "--conditions=@stan-ts/source", BIN, ...argv],
    {
      env: fullEnv,
      stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    },
  );
  if (input !== undefined) child.stdin?.end(input);
  const stdout = new Captured();
  const stderr = new Captured();
  child.stdout?.setEncoding("utf8").on("data", (c: string) => stdout.write(c));
  child.stderr?.setEncoding("utf8").on("data", (c: string) => stderr.write(c));
  const exited = new Promise<number>((resolve) => {
    child.once("close", (code, signal) => {
      resolve(code ?? (signal === "SIGINT" ? 130 : 128));
    });
  });
  return {
    child,
    stdout,
    stderr,
    exit: (timeoutMs = 15_000) =>
      new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => {
          child.kill("SIGKILL");
          reject(new Error(`stan ${argv.join(" ")} did not exit in ${timeoutMs} ms`));
        }, timeoutMs);
        void exited.then((code) => {
          clearTimeout(timer);
          resolve(code);
        });
      }),
  };
}

/** Parses JSON lines of `stan sub --format json`. */
export function jsonLines(text: string): Array<Record<string, unknown>> {
  return text
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
