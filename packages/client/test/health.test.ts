import { skipWithoutServerControl } from "@stan-ts/testing";
import { describe, expect, it } from "vitest";
import { ErrorCode, StanConnectionError, type Status } from "../src/index.js";
import { channel, client, iter, startServer, take } from "./helpers.js";

describe("connection health", () => {
  it("a vanished streaming server is detected by pings, reported once, and ends all pending work", async (ctx) => {
    skipWithoutServerControl(ctx); // stops the server
    await using server = await startServer();
    const lostHook: StanConnectionError[] = [];
    const sc = await client(server, {
      pingInterval: 200,
      pingMaxOut: 3,
      pubAckTimeout: 60_000,
      reconnect: false,
      onConnectionLost: (e) => lostHook.push(e),
    });
    const statuses: Status[] = [];
    const statusDone = (async () => {
      for await (const s of sc.status()) statuses.push(s);
    })();
    const ch = channel();
    await sc.publish(ch, "before");
    const sub = await sc.subscribe(ch, { startAt: "first" });
    const it = iter(sub);
    await take(it, 1);
    const waiting = it.next(); // a consumer blocked on the next message

    await server.stop(); // the streaming server goes away; NATS stays up
    const started = Date.now();
    const pendingPublish = sc.publish(ch, "into the void").catch((e) => e);

    const err = await sc.closed;
    const elapsed = Date.now() - started;
    expect(err).toBeInstanceOf(StanConnectionError);
    expect(err?.code).toBe(ErrorCode.ConnectionLost);
    expect(err?.message).toBe("stan: connection lost due to PING failure");
    // interval x maxOut = 600 ms, plus one interval for the first ping to be sent
    expect(elapsed).toBeLessThan(200 * 3 + 200 + 1000);

    await expect(waiting).rejects.toBe(err);
    expect(await pendingPublish).toBe(err);
    expect(await sub.closed).toBe(err);
    await statusDone; // the status stream ends with the connection
    expect(statuses.filter((s) => s.type === "connection-lost")).toHaveLength(1);
    expect(statuses.filter((s) => s.type === "ping-missed").length).toBeGreaterThanOrEqual(3);
    expect(lostHook).toEqual([err]);
    await sc.close(); // after loss: releases local resources, does not throw
    await expect(sc.publish(ch, "x")).rejects.toBe(err);
  });

  it("a server restart that forgot the client is detected from the ping's error", async (ctx) => {
    skipWithoutServerControl(ctx); // restarts the server
    await using server = await startServer(); // memory store: a restart forgets every client
    const sc = await client(server, { pingInterval: 200, reconnect: false });
    await server.restart();
    const err = await sc.closed;
    expect(err).toBeInstanceOf(StanConnectionError);
    expect(err?.message).toBe("client has been replaced or is no longer registered");
  });

  it("the NATS connection closing under the session is reported as connection loss", async () => {
    await using server = await startServer();
    const sc = await client(server, { pingInterval: 200 });
    await sc.nc.close();
    const err = await sc.closed;
    expect(err?.code).toBe(ErrorCode.ConnectionLost);
    expect(err?.message).toBe("stan: NATS connection closed");
    // the server still knows the old client, but its heartbeat inbox is gone, so the same
    // clientID gets in at once (the server's probe gets no responders)
    await using sc2 = await client(server, { clientId: sc.clientId });
    expect(sc2.isOpen).toBe(true);
  });

  it("a publish while the streaming server is down times out cleanly: NATS's 503 is no protocol error", async (ctx) => {
    skipWithoutServerControl(ctx); // stops the server
    await using server = await startServer();
    await using sc = await client(server, { pingInterval: 60_000, reconnect: false });
    const statuses: Status[] = [];
    void (async () => {
      for await (const s of sc.status()) statuses.push(s);
    })();
    await server.stop(); // nobody subscribes to the publish subject now: nats-server answers 503
    const err = await sc.publish(channel(), "nobody home", { timeout: 300 }).catch((e) => e);
    expect(err?.code).toBe(ErrorCode.PubAckTimeout);
    expect(statuses.filter((s) => s.type === "protocol-error")).toEqual([]);
  });
});
