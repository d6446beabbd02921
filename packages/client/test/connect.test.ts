import { connect as connectV3 } from "@nats-io/transport-node";
import { connect as natsConnect } from "nats";
import { describe, expect, it } from "vitest";
import {
  connect,
  ErrorCode,
  isStanError,
  StanArgumentError,
  StanServerError,
  StanTimeoutError,
} from "../src/index.js";
import { channel, client, take, uniqueId, useServer } from "./helpers.js";

const srv = useServer();

describe("connect", () => {
  it("connects, round-trips a message, and closes idempotently", async () => {
    const sc = await client(srv());
    expect(sc.isOpen).toBe(true);
    const ch = channel();
    const guid = await sc.publish(ch, "hello");
    expect(guid).toMatch(/^[0-9A-Za-z]{22}$/);
    const sub = await sc.subscribe(ch, { startAt: "first" });
    const [m] = await take(sub[Symbol.asyncIterator](), 1);
    expect(m?.string()).toBe("hello");
    await sc.close();
    await sc.close();
    expect(sc.isOpen).toBe(false);
    expect(await sc.closed).toBeUndefined();
    expect(sub.isClosed).toBe(true);
  });

  it("a wrong cluster ID fails fast (no responders), with the official text", async () => {
    const started = Date.now();
    const err = await connect({
      clusterId: "no-such-cluster",
      clientId: uniqueId(),
      servers: srv().url,
      connectTimeout: 20_000,
    }).catch((e) => e);
    expect(err).toBeInstanceOf(StanTimeoutError);
    expect(err.code).toBe(ErrorCode.ConnectTimeout);
    expect(err.message).toBe("stan: connect request timeout (possibly wrong cluster ID?)");
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it("a live clientID cannot be taken twice", async () => {
    const id = uniqueId();
    await using first = await client(srv(), { clientId: id });
    const err = await client(srv(), { clientId: id }).catch((e) => e);
    expect(err).toBeInstanceOf(StanServerError);
    expect(err.message).toBe("stan: clientID already registered");
    expect(first.isOpen).toBe(true);
  });

  it("a borrowed NATS connection stays open after close; an owned one is closed", async () => {
    const nc = await natsConnect({ servers: srv().url });
    const sc = await connect({ clusterId: srv().clusterId, clientId: uniqueId(), nc });
    await sc.close();
    expect(nc.isClosed()).toBe(false);
    await nc.close();

    const owned = await client(srv());
    const ownedNc = owned.nc;
    await owned.close();
    expect(ownedNc.isClosed()).toBe(true);
  });

  it("works on a borrowed @nats-io/transport-node 3.x connection", async () => {
    const nc = await connectV3({ servers: srv().url });
    try {
      await using sc = await connect({ clusterId: srv().clusterId, clientId: uniqueId(), nc });
      const ch = channel();
      await sc.publish(ch, "v3");
      // a pipelined burst and a batch take the pre-framed write path on a 3.x connection too
      const before = nc.stats().outMsgs;
      const acks: Promise<string>[] = [];
      for (let i = 0; i < 300; i++) acks.push((await sc.publishAsync(ch, `a${i}`)).acked);
      await Promise.all(acks);
      const batch = await sc.publishBatch(
        ch,
        Array.from({ length: 300 }, (_, i) => `b${i}`),
      );
      expect(batch.failures).toEqual([]);
      expect(nc.stats().outMsgs - before).toBeLessThan(10);
      await using sub = await sc.subscribe(ch, { startAt: "first", maxInflight: 601 });
      const got = await take(sub[Symbol.asyncIterator](), 601);
      expect(got.map((m) => m.string())).toEqual([
        "v3",
        ...Array.from({ length: 300 }, (_, i) => `a${i}`),
        ...Array.from({ length: 300 }, (_, i) => `b${i}`),
      ]);
    } finally {
      await nc.close();
    }
  });

  it("await using closes the connection at the end of the scope", async () => {
    let closed: Promise<unknown>;
    {
      await using sc = await client(srv());
      closed = sc.closed;
    }
    expect(await closed).toBeUndefined();
  });

  it.each([
    [{ clientId: "" }, /clientID missing/],
    [{ clientId: "has space" }, /only alphanumeric/],
    [{ clientId: "dots.not.allowed" }, /only alphanumeric/],
    [{ clusterId: "" }, /clusterId missing/],
    [{ pingInterval: 0 }, /pingInterval/],
    [{ maxPubAcksInflight: 0 }, /maxPubAcksInflight/],
    [{ connectTimeout: 1.5 }, /connectTimeout/],
  ])("rejects bad options %o with a StanArgumentError", async (over, text) => {
    const err = await connect({
      clusterId: srv().clusterId,
      clientId: uniqueId(),
      servers: srv().url,
      ...over,
    }).catch((e) => e);
    expect(err).toBeInstanceOf(StanArgumentError);
    expect(isStanError(err)).toBe(true);
    expect(err.code).toBe(ErrorCode.InvalidArgument);
    expect(err.message).toMatch(text);
  });

  it("an unreachable NATS server is a StanConnectionError naming the URL", async () => {
    const err = await connect({
      clusterId: "test-cluster",
      clientId: uniqueId(),
      servers: "nats://127.0.0.1:1",
    }).catch((e) => e);
    expect(isStanError(err)).toBe(true);
    expect(err.message).toContain("nats://127.0.0.1:1");
  });
});

describe("closing the connection under a running loop", () => {
  const srv2 = useServer();
  it("ends the iteration normally (no error), and `closed` resolves undefined", async () => {
    const sc = await client(srv2());
    const ch = channel();
    await sc.publish(ch, "one");
    const sub = await sc.subscribe(ch, { startAt: "first" });
    const seen: string[] = [];
    let gotOne!: () => void;
    const first = new Promise<void>((r) => {
      gotOne = r;
    });
    const loop = (async () => {
      for await (const m of sub) {
        seen.push(m.string());
        gotOne();
      }
    })();
    await first;
    await sc.close();
    await loop; // no throw
    expect(seen).toEqual(["one"]);
    expect(await sub.closed).toBeUndefined();
  });
});
