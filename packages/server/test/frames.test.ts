import { FrameWriter as CoreFrames } from "@stan-ts/core";
import { decode, PubAckSchema } from "@stan-ts/proto";
import { connect, createInbox, type Msg, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodePubAck } from "../src/codec.js";
import {
  FrameWriter,
  isClientInbox,
  MAX_FRAME_SUBJECT_BYTES,
  MAX_INBOX_LENGTH,
  SubjectTooLongError,
} from "../src/frames.js";
import { type NatsChild, spawnNatsServer } from "../src/nats-process.js";
import { until } from "./helpers.js";

describe("FrameWriter (batched PUB frames on the send connection)", () => {
  let nats: NatsChild;
  let pub: NatsConnection;
  let sub: NatsConnection;
  beforeAll(async () => {
    nats = await spawnNatsServer();
    [pub, sub] = await Promise.all([
      connect({ servers: nats.url }),
      connect({ servers: nats.url }),
    ]);
  });
  afterAll(async () => {
    await Promise.allSettled([pub?.close(), sub?.close()]);
    await nats?.stop();
  });

  it("refuses a subject nats-server would drop the connection for (over max_control_line); a long one that fits still goes out", async () => {
    const w = new FrameWriter(pub);
    const tooLong = `_INBOX.${"x".repeat(MAX_FRAME_SUBJECT_BYTES)}`;
    expect(() => w.publish(tooLong, new Uint8Array(1))).toThrow(SubjectTooLongError);
    expect(() => w.pubAck(tooLong, "g")).toThrow(SubjectTooLongError);
    // a client's inbox is held to less, a reply subject (it came in a longer line) is not
    expect(isClientInbox(`_INBOX.${"x".repeat(MAX_INBOX_LENGTH)}`)).toBe(false);
    expect(isClientInbox(`_INBOX.${"x".repeat(MAX_INBOX_LENGTH - 7)}`)).toBe(true);
    const long = `_INBOX.${"y".repeat(3000)}`;
    const got: Msg[] = [];
    sub.subscribe(long, { callback: (_e, m) => got.push(m) });
    await sub.flush();
    w.publish(long, new Uint8Array([7]));
    w.pubAck(long, "g");
    await until(() => got.length === 2);
    expect(pub.isClosed()).toBe(false);
  });

  it("finds the nats.js internals it expects (else every call would take the slow path)", () => {
    expect(CoreFrames.for(pub)).toBeDefined();
    expect(CoreFrames.for({ isClosed: () => false })).toBeUndefined();
  });

  it("delivers what nc.publish() would, in call order", async () => {
    const prefix = `frames.${Date.now()}`;
    const a = `${prefix}.a`;
    const b = createInbox();
    const got: Msg[] = [];
    sub.subscribe(`${prefix}.>`, { callback: (_e, m) => got.push(m) });
    sub.subscribe(b, { callback: (_e, m) => got.push(m) });
    await sub.flush();
    const w = new FrameWriter(pub);
    const big = new Uint8Array(70_000).map((_, i) => i % 251); // larger than one 64 KiB chunk
    const unicode = `${prefix}.ünï`;
    w.publish(a, new TextEncoder().encode("one"));
    w.pubAck(b, "guid-1");
    w.publish(unicode, new Uint8Array(0));
    w.publish(b, big);
    w.pubAck(a, "");
    w.pubAck(b, "g".repeat(300));
    w.flush(); // hands the frames over now: a direct publish goes out after them
    pub.publish(b, new TextEncoder().encode("direct"));
    w.publish(a, new TextEncoder().encode("two"));
    await pub.flush();
    await until(() => got.length === 8, 5000, "8 messages");
    expect(got.map((m) => m.subject)).toEqual([a, b, unicode, b, a, b, b, a]);
    expect(new TextDecoder().decode(got[0]!.data)).toBe("one");
    expect(decode(PubAckSchema, got[1]!.data).guid).toBe("guid-1");
    expect(Buffer.from(got[1]!.data)).toEqual(encodePubAck("guid-1"));
    expect(got[2]!.data.length).toBe(0);
    expect(Buffer.from(got[3]!.data)).toEqual(Buffer.from(big));
    expect(got[4]!.data.length).toBe(0);
    expect(Buffer.from(got[5]!.data)).toEqual(encodePubAck("g".repeat(300)));
    const order = got.slice(6).map((m) => new TextDecoder().decode(m.data));
    expect(order).toEqual(["direct", "two"]);
  });

  it("throws as nc.publish() does: payload over max_payload, empty subject, closed connection", async () => {
    const nc = await connect({ servers: nats.url });
    const w = new FrameWriter(nc);
    const max = nc.info?.max_payload ?? 1024 * 1024;
    expect(() => w.publish(createInbox(), new Uint8Array(max + 1))).toThrow(/MAX_PAYLOAD/i);
    expect(() => w.publish("", new Uint8Array(1))).toThrow();
    await nc.close();
    expect(() => w.publish(createInbox(), new Uint8Array(1))).toThrow(/CLOSED/i);
    expect(() => w.pubAck(createInbox(), "g")).toThrow(/CLOSED/i);
  });
});
