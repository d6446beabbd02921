import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  connect,
  ErrorCode,
  StanAbortError,
  StanConnectionError,
  StanTimeoutError,
} from "../src/index.js";

// A loopback listener that accepts TCP and never says a word: no NATS INFO ever comes.
let server: Server;
let url = "";
const sockets = new Set<Socket>();

beforeAll(async () => {
  server = createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const addr = server.address();
  if (addr === null || typeof addr === "string") throw new Error("no port");
  url = `nats://127.0.0.1:${addr.port}`;
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => server.close(r));
});

describe("connect is bounded against a peer that never speaks NATS", () => {
  it("timeout bounds the NATS connect ", async () => {
    const t0 = Date.now();
    const err = await connect({
      clusterId: "test-cluster",
      clientId: "silent-1",
      servers: url,
      timeout: 300,
      connectTimeout: 60_000,
    }).catch((e) => e);
    expect(err).toBeInstanceOf(StanTimeoutError);
    expect(err.code).toBe(ErrorCode.Timeout);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it("an aborted signal ends the call, even with waitOnFirstConnect", async () => {
    const ac = new AbortController();
    const accepted = new Promise<void>((r) => server.once("connection", () => r()));
    const p = connect({
      clusterId: "test-cluster",
      clientId: "silent-2",
      servers: url,
      signal: ac.signal,
      natsOptions: { waitOnFirstConnect: true },
    }).catch((e) => e);
    await accepted;
    ac.abort();
    const err = await p;
    expect(err).toBeInstanceOf(StanAbortError);
    expect(err.code).toBe(ErrorCode.Aborted);
  });

  it("without timeout or signal, connectTimeout bounds the first connect: CONNECT_FAILED", async () => {
    const t0 = Date.now();
    const err = await connect({
      clusterId: "test-cluster",
      clientId: "silent-3",
      servers: url,
      connectTimeout: 300,
    }).catch((e) => e);
    expect(err).toBeInstanceOf(StanConnectionError);
    expect(err.code).toBe(ErrorCode.ConnectFailed);
    expect(err.message).toContain(url);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it("a refused port is CONNECT_FAILED, not CONNECTION_LOST", async () => {
    const err = await connect({
      clusterId: "test-cluster",
      clientId: "silent-4",
      servers: "nats://127.0.0.1:1",
    }).catch((e) => e);
    expect(err).toBeInstanceOf(StanConnectionError);
    expect(err.code).toBe(ErrorCode.ConnectFailed);
  });
});
