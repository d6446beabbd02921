import { describe, expect, it } from "vitest";
import { ErrorCode, StanArgumentError, StanConnectionError } from "../src/index.js";
import { channel, client, take, useServer } from "./helpers.js";

const srv = useServer();

describe("publish", () => {
  it("sends bytes as they are, strings as UTF-8 and other values as JSON", async () => {
    await using sc = await client(srv());
    const ch = channel();
    await sc.publish(ch, new Uint8Array([0, 255, 7]));
    await sc.publish(ch, "héllo ✓");
    await sc.publish(ch, { n: 1, list: [true, null] });
    await sc.publish(ch, new Uint8Array(0));
    await using sub = await sc.subscribe(ch, { startAt: "first" });
    const [a, b, c, d] = await take(sub[Symbol.asyncIterator](), 4);
    expect([...(a?.data ?? [])]).toEqual([0, 255, 7]);
    expect(b?.string()).toBe("héllo ✓");
    expect(c?.json()).toEqual({ n: 1, list: [true, null] });
    expect(d?.data.length).toBe(0);
    expect(a?.sequence).toBe(1n);
    expect(d?.sequence).toBe(4n);
  });

  it("pipelined publishAsync keeps the window bounded and every ack resolves", async () => {
    await using sc = await client(srv(), { maxPubAcksInflight: 64 });
    const ch = channel();
    const acks: Promise<string>[] = [];
    let maxPending = 0;
    for (let i = 0; i < 2000; i++) {
      const { acked } = await sc.publishAsync(ch, `m${i}`);
      acks.push(acked);
      maxPending = Math.max(maxPending, sc.pendingPublishes);
    }
    const guids = await Promise.all(acks);
    expect(new Set(guids).size).toBe(2000);
    expect(maxPending).toBeLessThanOrEqual(64);
    expect(sc.pendingPublishes).toBe(0);
    await using sub = await sc.subscribe(ch, { startAt: { sequence: 2000 } });
    const [last] = await take(sub[Symbol.asyncIterator](), 1);
    expect(last?.string()).toBe("m1999");
  });

  it("writes a pipelined burst as pre-framed commands, in order, with every ack", async () => {
    await using sc = await client(srv(), { maxPubAcksInflight: 4096 });
    const nc = sc.nc as unknown as { stats(): { outMsgs: number } };
    const ch = channel();
    const before = nc.stats().outMsgs;
    const acks: Promise<string>[] = [];
    for (let i = 0; i < 3000; i++) acks.push((await sc.publishAsync(ch, `m${i}`)).acked);
    expect(new Set(await Promise.all(acks)).size).toBe(3000);
    // nats.js counts only what went through nc.publish(): the lone first publish, not the frames
    expect(nc.stats().outMsgs - before).toBeLessThan(10);
    await using sub = await sc.subscribe(ch, { startAt: "first", maxInflight: 4096 });
    const got = await take(sub[Symbol.asyncIterator](), 3000);
    expect(got.map((m) => m.string())).toEqual(Array.from({ length: 3000 }, (_, i) => `m${i}`));
    expect(got.map((m) => m.sequence)).toEqual(
      Array.from({ length: 3000 }, (_, i) => BigInt(i + 1)),
    );
  });

  it("publishBatch stores a batch larger than the window in order, with one outcome", async () => {
    await using sc = await client(srv(), { maxPubAcksInflight: 64 });
    const ch = channel();
    const items = Array.from({ length: 500 }, (_, i) => (i % 2 ? { n: i } : `m${i}`));
    const { guids, failures } = await sc.publishBatch(ch, items);
    expect(failures).toEqual([]);
    expect(new Set(guids).size).toBe(500);
    expect(sc.pendingPublishes).toBe(0);
    await using sub = await sc.subscribe(ch, { startAt: "first", maxInflight: 500 });
    const got = await take(sub[Symbol.asyncIterator](), 500);
    expect(got.map((m) => (m.sequence % 2n ? m.string() : m.json()))).toEqual(items);
  });

  it("publishBatch refuses a batch with a bad payload before sending any of it", async () => {
    await using sc = await client(srv());
    const ch = channel();
    // @ts-expect-error bigint is not a Payload; at run time it is refused as well
    const err = await sc.publishBatch(ch, ["ok", 1n, "never"]).catch((e) => e);
    expect(err).toBeInstanceOf(StanArgumentError);
    expect(err.message).toMatch(/not JSON-serializable/);
    const big = new Uint8Array((sc.nc.info?.max_payload ?? 1024 * 1024) + 1);
    const tooBig = await sc.publishBatch(ch, ["ok", big]).catch((e) => e);
    expect(tooBig.code).toBe(ErrorCode.MaxPayloadExceeded);
    // nothing of either batch was stored: the next message is the channel's first
    await sc.publish(ch, "first");
    await using sub = await sc.subscribe(ch, { startAt: "first" });
    const [first] = await take(sub[Symbol.asyncIterator](), 1);
    expect(first?.sequence).toBe(1n);
    expect(first?.string()).toBe("first");
  });

  it.each([
    ["", /non-empty/],
    ["foo.*", /wildcards/],
    ["foo.>", /wildcards/],
    ["foo..bar", /empty tokens/],
    [".foo", /empty tokens/],
    ["foo.", /empty tokens/],
    ["has space", /whitespace/],
  ])("refuses the subject %j with a StanArgumentError and keeps working", async (subject, text) => {
    await using sc = await client(srv());
    const err = await sc.publish(subject, "x").catch((e) => e);
    expect(err).toBeInstanceOf(StanArgumentError);
    expect(err.code).toBe(ErrorCode.InvalidArgument);
    expect(err.message).toMatch(text);
    await expect(sc.publish(channel(), "still fine")).resolves.toBeTypeOf("string");
  });

  it("refuses data that is not JSON-serializable", async () => {
    await using sc = await client(srv());
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    await expect(sc.publish(channel(), circular)).rejects.toThrow(/not JSON-serializable/);
    // @ts-expect-error bigint is not a Payload; at run time it is refused as well
    await expect(sc.publish(channel(), 10n)).rejects.toThrow(/not JSON-serializable/);
    await expect(sc.publish(channel(), () => 1)).rejects.toThrow(/not JSON-serializable/);
  });

  it("refuses a payload over the NATS max_payload before sending it", async () => {
    await using sc = await client(srv());
    const err = await sc.publish(channel(), new Uint8Array(1024 * 1024 + 1)).catch((e) => e);
    expect(err).toBeInstanceOf(StanArgumentError);
    expect(err.code).toBe(ErrorCode.MaxPayloadExceeded);
    expect(err.message).toMatch(/max_payload of 1048576/);
    expect(sc.pendingPublishes).toBe(0);
  });

  it("after close, publish rejects with `stan: connection closed`", async () => {
    const sc = await client(srv());
    await sc.close();
    const err = await sc.publish(channel(), "late").catch((e) => e);
    expect(err).toBeInstanceOf(StanConnectionError);
    expect(err.message).toBe("stan: connection closed");
  });
});
