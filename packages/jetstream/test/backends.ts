// The two backends the behaviour suite runs on: NATS Streaming (the harness's streaming
// server: embedded, or the official binary with NATS_STREAMING_SERVER) and JetStream (Debian's
// nats-server with -js and a file store in a temporary directory, on loopback).
import { jetStreamServer, type NatsServer, streamingMode, streamingServer } from "@stan-ts/testing";
import { type ConnectOptions, connect, type StanConnection } from "stan-ts";
import { afterAll, beforeAll, describe } from "vitest";
import { uniqueId } from "../../client/test/helpers.js";
import { type JetStreamBackendOptions, jetstream } from "../src/index.js";

/**
 * `describe` for tests that use JetStream alone (no streaming server): they run in the default
 * (embedded) pass and are skipped in the binary pass (NATS_STREAMING_SERVER), where they would
 * test exactly the same thing again. The behaviour suite, which runs STAN too, runs in both.
 */
export const jetStreamOnly: ReturnType<typeof describe.skipIf> = describe.skipIf(
  streamingMode() === "binary",
);

/** A running server of one backend, and how to connect to it. */
export interface Target extends AsyncDisposable {
  readonly name: "stan" | "jetstream";
  readonly url: string;
  connect(over?: Partial<ConnectOptions>): Promise<StanConnection>;
}

/** nats-server with JetStream on a free loopback port, its store in a fresh temporary dir. */
export async function startJetStream(
  backend: JetStreamBackendOptions = {},
): Promise<Target & { nats: NatsServer; dir: string }> {
  const js = await jetStreamServer();
  return {
    name: "jetstream",
    url: js.url,
    nats: js.nats,
    dir: js.dir,
    connect: (over = {}) =>
      connect({
        clusterId: "test-cluster",
        clientId: uniqueId(),
        servers: js.url,
        backend: jetstream(backend),
        ...over,
      }),
    [Symbol.asyncDispose]: () => js[Symbol.asyncDispose](),
  };
}

/** The harness's streaming server. */
export async function startStan(): Promise<Target> {
  const stan = await streamingServer();
  return {
    name: "stan",
    url: stan.url,
    connect: (over = {}) =>
      connect({ clusterId: stan.clusterId, clientId: uniqueId(), servers: stan.url, ...over }),
    [Symbol.asyncDispose]: () => stan[Symbol.asyncDispose](),
  };
}

/** One target for the whole file (or describe block). */
export function useTarget<T extends Target>(start: () => Promise<T>): () => T {
  let target: T | undefined;
  beforeAll(async () => {
    target = await start();
  });
  afterAll(async () => {
    await target?.[Symbol.asyncDispose]();
  });
  return () => {
    if (!target) throw new Error("the test server is not started yet");
    return target;
  };
}
