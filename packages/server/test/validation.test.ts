/**
 * Which request fields the server validates, in which order, with which error text: the
 * order and texts of nats-streaming-server 0.25.6 (server.go connectCB,
 * processSubscriptionRequest, processSub, performUnsubOrCloseSubscription, processCloseRequest,
 * processClientPublish). Each request below has several defects; the answer names the first
 * one the Go server checks. Runs in embedded and binary mode (NATS_STREAMING_SERVER); where
 * 0.25.6 accepts a field ours refuses (a heartbeat inbox with whitespace), the test says so.
 */
import {
  CloseRequestSchema,
  type ConnectRequest,
  ConnectRequestSchema,
  ConnectResponseSchema,
  decode,
  encode,
  PubAckSchema,
  PubMsgSchema,
  StartPosition,
} from "@stan-ts/proto";
import { Errors } from "@stan-ts/server";
import { connect, createInbox } from "nats";
import { describe, expect, it } from "vitest";
import { dec, RawClient, uid, useServer } from "./helpers.js";

describe("request validation: order and error texts of 0.25.6", () => {
  const f = useServer({});
  const official = () => f.stan.mode === "binary";

  async function connectError(req: Partial<Omit<ConnectRequest, "$typeName">>): Promise<string> {
    const nc = await connect({ servers: f.stan.url });
    try {
      const r = await nc.request(
        `_STAN.discover.${f.stan.clusterId}`,
        encode(ConnectRequestSchema, { protocol: 1, ...req }),
        { timeout: 3000 },
      );
      const resp = decode(ConnectResponseSchema, r.data);
      if (resp.error === "" && req.clientID) {
        // registered: close it again so the ID does not linger
        const cl = await nc.request(
          resp.closeRequests,
          encode(CloseRequestSchema, { clientID: req.clientID }),
          {
            timeout: 3000,
          },
        );
        expect(cl.data.length).toBe(0);
      }
      return resp.error;
    } finally {
      await nc.close();
    }
  }

  it("connect: the heartbeat inbox first, then the clientID pattern", async () => {
    // an empty heartbeat inbox wins over a bad clientID
    expect(await connectError({ clientID: "bad id", heartbeatInbox: "" })).toBe(
      Errors.invalidConnReq,
    );
    for (const id of ["", "a b", "a\tb", "a\r\nb", "a.b", "a*", "é", "a:b", "x\u0000"]) {
      expect(await connectError({ clientID: id, heartbeatInbox: createInbox() })).toBe(
        Errors.invalidClientID,
      );
    }
    // long IDs are fine; protocol, connID and the ping values are never validated
    expect(
      await connectError({
        clientID: `L${"x".repeat(5000)}`,
        heartbeatInbox: createInbox(),
        protocol: -7,
        pingInterval: -1,
        pingMaxOut: 2_000_000_000,
      }),
    ).toBe("");
    // a heartbeat inbox that cannot be a NATS subject (or is longer than nats-server's
    // max_control_line allows): 0.25.6 accepts it (and its heartbeat request then breaks its
    // connection); ours refuses it with the same text as an empty one
    for (const hb of ["a b", "_INBOX.x\r\nPUB y 1", "_INBOX.\t", `_INBOX.${"x".repeat(5000)}`]) {
      expect(await connectError({ clientID: uid("hb"), heartbeatInbox: hb })).toBe(
        official() ? "" : Errors.invalidConnReq,
      );
    }
  });

  it("subscribe: clientID, ack wait, max in flight, start position, subject, client, then queue durable name", async () => {
    const c = f.c;
    const base = { subject: uid("v."), inbox: createInbox() };
    const cases: Array<[Parameters<RawClient["subRequest"]>[0], string]> = [
      [
        {
          clientID: "",
          ackWaitInSecs: 0,
          maxInFlight: 0,
          startPosition: 9 as StartPosition,
          subject: "",
        },
        Errors.missingClient,
      ],
      [
        { ackWaitInSecs: 0, maxInFlight: -1, startPosition: 9 as StartPosition, subject: "a..b" },
        Errors.invalidAckWait,
      ],
      [
        { ackWaitInSecs: -5, maxInFlight: 0, startPosition: 9 as StartPosition },
        Errors.invalidAckWait,
      ],
      [
        { maxInFlight: 0, startPosition: 9 as StartPosition, subject: "a..b" },
        Errors.invalidMaxInflight,
      ],
      [
        { startPosition: 5 as StartPosition, subject: "a..b", clientID: "nobody" },
        Errors.invalidStart,
      ],
      [{ startPosition: -1 as StartPosition, subject: "*" }, Errors.invalidStart],
      [{ subject: "a..b", clientID: "nobody" }, Errors.invalidSubject],
      [{ subject: "", clientID: "nobody" }, Errors.invalidSubject],
      [{ subject: "a.>", clientID: "nobody" }, Errors.invalidSubject],
      [{ subject: "a/b", clientID: "nobody" }, Errors.invalidSubject],
      [{ subject: ".a", clientID: "nobody" }, Errors.invalidSubject],
      [{ clientID: "nobody", qGroup: "q", durableName: "d:x", inbox: "" }, Errors.unknownClient],
      [{ clientID: "a b", inbox: "" }, Errors.unknownClient],
      [{ qGroup: "q", durableName: "d:x", inbox: "" }, Errors.durableQueueColon],
    ];
    for (const [req, error] of cases) {
      const r = await c.subRequest({ ...base, ...req });
      expect({ req, error: r.error }).toEqual({ req, error });
    }
  });

  it("durable names and queue groups with whitespace or control characters are accepted (never used as subjects)", async () => {
    const ch = uid("names.");
    const durableName = "d u\tr\r\n\u0000a\u007fble";
    const d = await f.c.subscribe(ch, { durableName, startPosition: StartPosition.First });
    const other = await RawClient.connect(f.stan.url, f.stan.clusterId, uid("o"));
    const qGroup = "q g\r\n\u0001";
    const q1 = await other.subscribe(ch, { qGroup });
    const q2 = await other.subscribe(ch, { qGroup, durableName: "q d" });
    await f.c.publishMany(ch, 2, "n");
    await d.waitFor(2);
    await q1.waitFor(2);
    await q2.waitFor(2);
    // the same name is the same durable: a second one online is a duplicate
    expect((await f.c.subRequest({ subject: ch, durableName })).error).toBe(
      Errors.duplicateDurable,
    );
    for (const m of d.received) d.ack(m.sequence);
    expect(await d.unsubscribe(true)).toBe("");
    await f.c.publishMany(ch, 1, "later");
    // closed, then resumed by name: it continues after what it acknowledged
    const resumed = await f.c.subscribe(ch, { durableName });
    await resumed.waitFor(1);
    expect(resumed.seqs()).toEqual([3]);
    expect(await resumed.unsubscribe()).toBe("");
    await other.close();
  });

  it("channel names: only the §4 rules; whitespace and control characters are valid, as in 0.25.6", async () => {
    for (const ch of [uid("a b."), uid("tab\t."), uid("ctl\u0001."), uid("uni.é.")]) {
      const s = await f.c.subscribe(ch, { startPosition: StartPosition.First });
      // the NATS subject of a publish is never compared with the channel
      expect(await f.c.publish(ch, "x", { natsSubject: "names" })).toMatchObject({ error: "" });
      await s.waitFor(1);
      expect(s.received[0]?.subject).toBe(ch);
      expect(await s.unsubscribe()).toBe("");
    }
  });

  it("publish: guid and subject, then the client; a guid with whitespace is echoed as is", async () => {
    const c = f.c;
    const send = async (fields: Record<string, unknown>) => {
      const r = await c.nc.request(
        `${c.resp.pubPrefix}.x`,
        encode(PubMsgSchema, {
          clientID: c.clientID,
          connID: c.connID,
          guid: "g",
          subject: "ok.chan",
          ...fields,
        }),
        { timeout: 3000 },
      );
      return decode(PubAckSchema, r.data);
    };
    expect(
      await send({ guid: "", subject: "a..b", clientID: "nobody", connID: new Uint8Array() }),
    ).toMatchObject({ guid: "", error: Errors.invalidPubReq });
    expect(await send({ subject: "a b..", clientID: "nobody" })).toMatchObject({
      guid: "g",
      error: Errors.invalidPubReq,
    });
    // connID set: it alone decides, the clientID is ignored
    expect(await send({ clientID: "nobody" })).toMatchObject({ guid: "g", error: "" });
    expect(await send({ connID: new Uint8Array([1, 2, 3]) })).toMatchObject({
      error: Errors.invalidPubReq,
    });
    // no connID: the clientID decides
    expect(await send({ connID: new Uint8Array(), clientID: "no body" })).toMatchObject({
      error: Errors.invalidPubReq,
    });
    expect(await send({ guid: "g u\r\ni\u0000d" })).toMatchObject({
      guid: "g u\r\ni\u0000d",
      error: "",
    });
    expect(dec.decode(new Uint8Array())).toBe("");
  });

  it("unsubscribe and close: channel, then subscription, then client", async () => {
    const ch = uid("u.");
    const s = await f.c.subscribe(ch);
    const other = await RawClient.connect(f.stan.url, f.stan.clusterId, uid("o"));
    for (const close of [false, true]) {
      expect(await other.unsub(uid("nochan."), "bad inbox", close, "nobody")).toBe(
        Errors.unknownChannel,
      );
      expect(await other.unsub(ch, "bad inbox", close, "nobody")).toBe(Errors.invalidSub);
      expect(await other.unsub(ch, s.ackInbox, close, "a b")).toBe(Errors.unknownClient);
      // another registered client cannot remove it either
      expect(await other.unsub(ch, s.ackInbox, close)).toBe(Errors.unknownClient);
    }
    expect(await other.closeRequest("")).toBe(Errors.unknownClient);
    expect(await other.closeRequest("a b\r\n")).toBe(Errors.unknownClient);
    expect(await s.unsubscribe()).toBe("");
    await other.close();
  });
});
