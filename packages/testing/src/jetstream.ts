// A nats-server with JetStream for the JetStream backend's tests, its example and benchmark.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type NatsServer, type NatsServerOptions, startNatsServer } from "./nats-server.js";

/** A running nats-server with JetStream; disposing it stops it and removes its store. */
export interface JetStreamServer extends AsyncDisposable {
  readonly url: string;
  readonly nats: NatsServer;
  /** The JetStream store directory (`-sd`), a fresh temporary one. */
  readonly dir: string;
}

/**
 * Starts nats-server with JetStream (`-js -sd <fresh temporary dir>`) on a free loopback port;
 * `restart()` of its `nats` keeps the store.
 */
export async function jetStreamServer(options: NatsServerOptions = {}): Promise<JetStreamServer> {
  const dir = mkdtempSync(join(tmpdir(), "stan-ts-js-"));
  let nats: NatsServer;
  try {
    nats = await startNatsServer({
      ...options,
      args: ["-js", "-sd", dir, ...(options.args ?? [])],
    });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    url: nats.url,
    nats,
    dir,
    async [Symbol.asyncDispose]() {
      await nats.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
