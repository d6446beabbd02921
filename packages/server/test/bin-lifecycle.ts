/** Spawns `stan-server` from its sources (tsx) for the start-up and shutdown tests. */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

const bin = fileURLToPath(new URL("../src/bin.ts", import.meta.url));

/** A free TCP port on 127.0.0.1 (free when asked: a test uses it at once). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** A running `stan-server` child and its log. */
export interface BinProcess {
  readonly child: ChildProcess;
  /** Everything it wrote to stderr so far. */
  log(): string;
  /** Resolves at the first log line containing `text` (already written or to come). */
  line(text: string): Promise<string>;
  /** Resolves with the exit status (or signal name). */
  readonly exited: Promise<number | string>;
}

/** The built bin, dist/bin.cjs (with dist/bin-server.cjs beside it), once `pnpm build` ran. */
export const builtBin = fileURLToPath(new URL("../dist/bin.cjs", import.meta.url));

/**
 * Starts `stan-server args...`, stderr collected line by line: from the sources (node + tsx),
 * or the built bin with `built` (its environment extended by `env`).
 */
export function startBin(
  args: readonly string[],
  built?: { env: Record<string, string> },
): BinProcess {
  const child = spawn(
    process.execPath,
    built ? [builtBin, ...args] : ["--import", "tsx", "--conditions=@stan-ts/source", bin, ...args],
    { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...built?.env } },
  );
  let log = "";
  const waiters: { text: string; resolve: (l: string) => void }[] = [];
  const check = () => {
    for (const w of [...waiters]) {
      // complete lines only: a chunk may end inside one
      const line = log
        .slice(0, log.lastIndexOf("\n") + 1)
        .split("\n")
        .find((l) => l.includes(w.text));
      if (line !== undefined) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  };
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (c: string) => {
    log += c;
    check();
  });
  const exited = new Promise<number | string>((resolve) =>
    child.once("exit", (code, signal) => resolve(code ?? signal ?? -1)),
  );
  return {
    child,
    log: () => log,
    line: (text) =>
      new Promise((resolve, reject) => {
        waiters.push({ text, resolve });
        check();
        void exited.then((s) =>
          reject(new Error(`stan-server exited (${s}) before "${text}":\n${log}`)),
        );
      }),
    exited,
  };
}
