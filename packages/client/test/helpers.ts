import { streamingServer } from "@stan-ts/testing";
import { afterAll, beforeAll } from "vitest";
import {
  type ConnectOptions,
  connect,
  type Message,
  type StanConnection,
  type Subscription,
} from "../src/index.js";

let seq = 0;
/** A clientID unique within this test process. */
export function uniqueId(prefix = "c"): string {
  return `${prefix}-${process.pid}-${++seq}-${Date.now().toString(36)}`;
}

/** A unique channel name. */
export function channel(prefix = "ch"): string {
  return `${prefix}.${process.pid}.${++seq}`;
}

export type TestServer = Awaited<ReturnType<typeof streamingServer>>;

export function startServer(opts?: Parameters<typeof streamingServer>[0]): Promise<TestServer> {
  return streamingServer(opts);
}

/** One streaming server for the whole test file: started before, disposed after. */
export function useServer(opts?: Parameters<typeof streamingServer>[0]): () => TestServer {
  let server: TestServer | undefined;
  beforeAll(async () => {
    server = await streamingServer(opts);
  });
  afterAll(async () => {
    await server?.[Symbol.asyncDispose]();
  });
  return () => {
    if (!server) throw new Error("the test server is not started yet");
    return server;
  };
}

/** Connects a client to the test server (callers close it, or use `await using`). */
export function client(
  server: TestServer,
  over: Partial<ConnectOptions> = {},
): Promise<StanConnection> {
  return connect({
    clusterId: server.clusterId,
    clientId: uniqueId(),
    servers: server.url,
    ...over,
  });
}

/** Pulls exactly `n` messages from an iterator, with a deadline so a test never hangs. */
export async function take(
  it: AsyncIterator<Message>,
  n: number,
  timeoutMs = 10_000,
): Promise<Message[]> {
  const out: Message[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < n) {
    const left = deadline - Date.now();
    const r = await Promise.race([
      it.next(),
      new Promise<never>((_, rej) =>
        setTimeout(
          () => rej(new Error(`took ${out.length}/${n} messages before the deadline`)),
          Math.max(1, left),
        ),
      ),
    ]);
    if (r.done) throw new Error(`iterator ended after ${out.length}/${n} messages`);
    out.push(r.value);
  }
  return out;
}

/** Resolves with the next message or rejects after `timeoutMs` (for "nothing arrives" checks use {@link expectNothing}). */
export function iter(sub: Subscription): AsyncIterator<Message> {
  return sub[Symbol.asyncIterator]();
}

/**
 * Asserts that no message is handed out within `ms`. A quiet period is the only way to observe
 * an absence; it is never used to wait for something that has an event.
 */
export async function expectNothing(
  it: AsyncIterator<Message>,
  ms: number,
): Promise<{ next: Promise<IteratorResult<Message>> }> {
  const next = it.next();
  const r = await Promise.race([
    next.then(() => "message"),
    new Promise((res) => setTimeout(() => res("quiet"), ms)),
  ]);
  if (r !== "quiet") throw new Error("a message arrived when none was expected");
  return { next }; // wrapped: returning the promise itself would wait for it
}

/** Publishes `n` messages `prefix-i` and waits for all acks. */
export async function publishN(
  sc: StanConnection,
  subject: string,
  n: number,
  prefix = "m",
): Promise<void> {
  for (let i = 1; i <= n; i++) await sc.publish(subject, `${prefix}-${i}`);
}
