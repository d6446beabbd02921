import { ConnectRequestSchema, ConnectResponseSchema, decode, encode } from "@stan-ts/proto";
import {
  type StreamingServerHandle,
  skipWithoutServerControl,
  streamingServer,
} from "@stan-ts/testing";
import { connect, createInbox } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RawClient, uid, until } from "./helpers.js";

let stan: StreamingServerHandle;

beforeAll(async () => {
  // Short heartbeats so eviction and replacement are observable quickly.
  stan = await streamingServer({ hbInterval: 150, hbTimeout: 150, hbFailCount: 2 });
});
afterAll(async () => {
  await stan?.[Symbol.asyncDispose]();
});

async function rawConnect(payload: Uint8Array): Promise<string> {
  const nc = await connect({ servers: stan.url });
  try {
    const r = await nc.request(`_STAN.discover.${stan.clusterId}`, payload, { timeout: 3000 });
    return decode(ConnectResponseSchema, r.data).error;
  } finally {
    await nc.close();
  }
}

describe("connect", () => {
  it("answers with the request subjects, protocol 1 and the echoed ping settings", async () => {
    const c = await RawClient.connect(stan.url, stan.clusterId, uid(), {
      pingInterval: 7,
      pingMaxOut: 3,
    });
    const cid = stan.clusterId;
    expect(c.resp.pubPrefix).toBe(`_STAN.pub.${cid}`);
    expect(c.resp.subRequests).toBe(`_STAN.sub.${cid}`);
    expect(c.resp.unsubRequests).toBe(`_STAN.unsub.${cid}`);
    expect(c.resp.subCloseRequests).toBe(`_STAN.subclose.${cid}`);
    expect(c.resp.closeRequests).toBe(`_STAN.close.${cid}`);
    expect(c.resp.pingRequests).toBe(`_STAN.discover.${cid}.pings`);
    expect(c.resp.protocol).toBe(1);
    expect(c.resp.pingInterval).toBe(7);
    expect(c.resp.pingMaxOut).toBe(3);
    expect(c.resp.publicKey).toBe("");
    await c.close();
  });

  it("does not send ping settings to a protocol-0 client, and serves it by clientID", async () => {
    const c = await RawClient.connect(stan.url, stan.clusterId, uid(), { protocol: 0 });
    expect(c.resp.protocol).toBe(1);
    expect(c.resp.pingRequests).toBe("");
    expect(c.resp.pingInterval).toBe(0);
    expect(await c.publish("p0.chan", "x", { connID: new Uint8Array() })).toMatchObject({
      error: "",
    });
    await c.close();
  });

  it("rejects invalid requests and client IDs with the official texts", async () => {
    expect(await rawConnect(Uint8Array.of(0xff, 0xff, 0xff))).toBe(
      "stan: invalid connection request",
    );
    expect(await rawConnect(encode(ConnectRequestSchema, { clientID: "abc" }))).toBe(
      "stan: invalid connection request",
    );
    const invalid = "stan: invalid clientID: only alphanumeric and `-` or `_` characters allowed";
    for (const id of ["", "a.b", "a b", "é", "a*"]) {
      expect(
        await rawConnect(encode(ConnectRequestSchema, { clientID: id, heartbeatInbox: "x" })),
      ).toBe(invalid);
    }
  });

  it("refuses a duplicate clientID while the old client answers its heartbeat inbox", async () => {
    const id = uid();
    const a = await RawClient.connect(stan.url, stan.clusterId, id);
    const dup = await RawClient.tryConnect(stan.url, stan.clusterId, id);
    expect(dup.resp.error).toBe("stan: clientID already registered");
    await dup.nc.close();
    expect(await a.ping()).toEqual({ error: "", bytes: 0 });
    await a.close();
  });

  it("replaces a vanished client at once (no responders) and a silent one after ~500ms", async () => {
    const id = uid();
    const gone = await RawClient.connect(stan.url, stan.clusterId, id);
    await gone.vanish();
    const t0 = Date.now();
    const b = await RawClient.connect(stan.url, stan.clusterId, id);
    expect(Date.now() - t0).toBeLessThan(450);

    // A client whose connection is up but who never answers heartbeats: the 500ms probe times out.
    const id2 = uid();
    const silent = await RawClient.connect(stan.url, stan.clusterId, id2, { answerHb: false });
    const t1 = Date.now();
    const c = await RawClient.connect(stan.url, stan.clusterId, id2);
    expect(Date.now() - t1).toBeGreaterThanOrEqual(450);
    // The replaced client learns it through its pings, and its publishes are refused.
    expect(await silent.ping()).toMatchObject({
      error: "client has been replaced or is no longer registered",
    });
    expect((await silent.publish("dup.chan", "x")).error).toBe("stan: invalid publish request");
    await silent.vanish();
    await b.close();
    await c.close();
  });

  it("closes a client that stops answering heartbeats", async (ctx) => {
    skipWithoutServerControl(ctx); // needs the harness's short heartbeat options
    const c = await RawClient.connect(stan.url, stan.clusterId, uid(), { answerHb: false });
    const sub = await c.subscribe(uid("hb."));
    expect(sub.ackInbox).toMatch(/^_INBOX\./);
    // interval 150ms, timeout 150ms, fail count 2: closed after the 3rd failure (~900ms)
    let error = "";
    await until(
      () => {
        c.ping().then(
          (r) => {
            error = r.error;
          },
          () => {},
        );
        return error !== "";
      },
      5000,
      "heartbeat eviction",
    );
    expect(error).toBe("client has been replaced or is no longer registered");
    expect(c.hbCount.n).toBeGreaterThanOrEqual(3);
    expect(await c.closeRequest()).toBe("stan: unknown clientID");
    await c.vanish();
  });

  // with STAN_URL, the server's own -hbi: 1s as README asks, so three arrive in about 3 s
  it("keeps a client that answers heartbeats", async () => {
    const c = await RawClient.connect(stan.url, stan.clusterId, uid());
    await until(() => c.hbCount.n >= 3, 5000, "three heartbeats");
    expect(await c.ping()).toEqual({ error: "", bytes: 0 });
    await c.close();
  });
});

describe("pings and close", () => {
  it("ignores empty pings and answers unknown connIDs with the replaced error", async () => {
    const c = await RawClient.connect(stan.url, stan.clusterId, uid());
    await expect(
      c.nc.request(c.resp.pingRequests, new Uint8Array(), { timeout: 300 }),
    ).rejects.toThrow();
    expect(await c.ping(new TextEncoder().encode("nope"))).toMatchObject({
      error: "client has been replaced or is no longer registered",
    });
    await c.close();
  });

  it("close: unknown and invalid requests, then success with an empty reply", async () => {
    const c = await RawClient.connect(stan.url, stan.clusterId, uid());
    expect(await c.closeRequest("nobody")).toBe("stan: unknown clientID");
    expect(await c.closeRequest("")).toBe("stan: unknown clientID");
    const bad = await c.nc.request(c.resp.closeRequests, Uint8Array.of(0xff, 0xff), {
      timeout: 3000,
    });
    expect(new TextDecoder().decode(bad.data)).toContain("stan: invalid close request");
    expect(await c.closeRequest()).toBe("");
    expect(await c.ping()).toMatchObject({
      error: "client has been replaced or is no longer registered",
    });
    // After a close the same ID connects again at once.
    const again = await RawClient.connect(stan.url, stan.clusterId, c.clientID);
    await again.close();
    await c.vanish();
  });

  // In every mode: in binary and external mode the embedded server's self-check probes the Go one.
  it("a second server with the same cluster ID refuses to start", async () => {
    const { startServer } = await import("@stan-ts/server");
    await expect(
      startServer({ natsUrl: stan.url, clusterId: stan.clusterId, logLevel: "silent" }),
    ).rejects.toThrow(`discovered another streaming server with cluster ID "${stan.clusterId}"`);
    // the probe must not have broken the running server
    const c = await RawClient.connect(stan.url, stan.clusterId, uid());
    await c.close();
  });

  it("connect to a wrong cluster ID gets no responders", async () => {
    const nc = await connect({ servers: stan.url });
    await expect(
      nc.request(
        "_STAN.discover.nope",
        encode(ConnectRequestSchema, { clientID: "x", heartbeatInbox: createInbox() }),
        { timeout: 500 },
      ),
    ).rejects.toThrow();
    await nc.close();
  });
});
