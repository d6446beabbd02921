import { type ChildProcess, spawn } from "node:child_process";

/** A nats-server child process started by {@link spawnNatsServer}. */
export interface NatsChild {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** SIGTERM (SIGKILL after 5 s), waits for exit. Idempotent. */
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();
let hooked = false;

/**
 * Starts `nats-server` (NATS_SERVER_BIN or PATH) on 127.0.0.1 and a free port, and waits
 * for it to accept clients. A watchdog shell reading our stdin pipe kills the child when
 * this process dies in any way, so the child never outlives its parent. Exported as
 * `startNatsServer` for tests and examples that need NATS to outlive a streaming server.
 */
export async function spawnNatsServer(
  opts: { bin?: string; port?: number; readyTimeout?: number } = {},
): Promise<NatsChild> {
  const bin = opts.bin ?? process.env.NATS_SERVER_BIN ?? "nats-server";
  if (!hooked) {
    hooked = true;
    process.on("exit", () => {
      for (const c of children) c.kill("SIGKILL");
    });
  }
  const child = spawn(bin, ["-a", "127.0.0.1", "-p", String(opts.port ?? -1)], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  children.add(child);
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => {
      children.delete(child);
      resolve();
    }),
  );
  let watchdog: ChildProcess | undefined;
  if (child.pid !== undefined) {
    watchdog = spawn("sh", ["-c", `read _ ; kill -9 ${child.pid} 2>/dev/null`], {
      stdio: ["pipe", "ignore", "ignore"],
    });
    watchdog.unref();
  }
  let port = 0;
  let log = "";
  const timeout = opts.readyTimeout ?? 10_000;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`nats-server not ready after ${timeout} ms:\n${log}`)),
        timeout,
      );
      child.once("error", (err) => {
        clearTimeout(timer);
        reject(new Error(`cannot start nats-server ("${bin}"): ${err.message}`));
      });
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`nats-server exited (${code ?? signal}) before ready:\n${log}`));
      });
      child.stderr?.setEncoding("utf8");
      child.stderr?.on("data", (chunk: string) => {
        log += chunk;
        const m = /Listening for client connections on [^:\s]+:(\d+)/.exec(log);
        if (m?.[1]) port = Number(m[1]);
        if (log.includes("Server is ready")) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  } catch (err) {
    watchdog?.kill("SIGKILL");
    child.kill("SIGKILL");
    throw err;
  }
  child.stderr?.removeAllListeners("data");
  child.stderr?.resume();
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    watchdog?.kill("SIGKILL");
    child.kill("SIGTERM");
    const t = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(t);
  };
  return { url: `nats://127.0.0.1:${port}`, port, pid: child.pid ?? -1, stop };
}
