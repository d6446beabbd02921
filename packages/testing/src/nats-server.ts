// The harness's nats-server: @stan-ts/server's startNatsServer (free port, restart on the same
// port, kill -9, config, watchdog), with maxPayload and failures raised as HarnessError.
import {
  findNatsServer as findBinary,
  type NatsChild,
  type NatsChildOptions,
  startNatsServer as spawnNatsServer,
} from "@stan-ts/server";
import { connect, type ServerInfo } from "nats";

/** Options for {@link startNatsServer}: the server package's, and `maxPayload`. */
export interface NatsServerOptions extends NatsChildOptions {
  /** Largest payload the server accepts, in bytes. @default 1048576 (nats-server's default) */
  maxPayload?: number;
}

/** Raised when the nats-server binary is missing or will not start. */
export class HarnessError extends Error {
  override name = "HarnessError";
}

/** A running nats-server started by this harness; `restart()` may change its `pid`. */
export type NatsServer = NatsChild;

function harnessError(err: unknown): HarnessError {
  if (err instanceof HarnessError) return err;
  return new HarnessError(err instanceof Error ? err.message : String(err), { cause: err });
}

async function raising<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw harnessError(err);
  }
}

/** Resolves the nats-server binary or throws an actionable {@link HarnessError}. */
export function findNatsServer(bin?: string): string {
  try {
    return findBinary(bin);
  } catch (err) {
    throw harnessError(err);
  }
}

/**
 * Starts a nats-server on 127.0.0.1 and waits until it accepts clients.
 *
 * Each server gets a watchdog that SIGKILLs it when this process dies in any way, so a crashed
 * or timed-out test never leaves a server behind.
 */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const { maxPayload, config, ...rest } = options;
  const lines = [maxPayload === undefined ? "" : `max_payload: ${maxPayload}`, config ?? ""];
  const text = lines.filter((line) => line !== "").join("\n");
  const server = await raising(() => spawnNatsServer(text ? { ...rest, config: text } : rest));
  const restart = server.restart;
  return Object.assign(server, { restart: () => raising(restart) });
}

/** True while a process with this PID exists (a zombie not yet reaped counts). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Connects to the NATS server at `url`, round-trips a request through it and returns its INFO;
 * rejects when the server cannot be reached or the reply is not the request echoed.
 */
export async function probeNats(url: string): Promise<ServerInfo> {
  const nc = await connect({ servers: url, reconnect: false });
  try {
    const subject = `probe.${process.pid}.${Date.now()}`;
    nc.subscribe(subject, { max: 1, callback: (_e, m) => m.respond(m.data) });
    const reply = await nc.request(subject, new TextEncoder().encode("ping"), { timeout: 2000 });
    const echoed = new TextDecoder().decode(reply.data);
    if (echoed !== "ping") throw new HarnessError(`${url} echoed "${echoed}", not "ping"`);
    return nc.info!;
  } finally {
    await nc.close();
  }
}
