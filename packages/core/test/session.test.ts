import {
  decode,
  encode,
  StartPosition,
  SubscriptionRequestSchema,
  SubscriptionResponseSchema,
  UnsubscribeRequestSchema,
} from "@stan-ts/proto";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  ErrorCode,
  Session,
  type SessionEvent,
  StanAbortError,
  StanArgumentError,
  StanConnectionError,
  type StanError,
  StanServerError,
  StanTimeoutError,
} from "../src/index.js";
import { FakeNats } from "./fake-nats.js";
import { data, nextEvent, options, setup } from "./session-fixtures.js";

describe("Session (engine) against a precise fake", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("connect with no responders fails at once with the official timeout text", async () => {
    const nc = new FakeNats();
    const started = Date.now();
    const err = await Session.open(nc, options({ connectTimeout: 10_000 })).catch((e) => e);
    expect(err).toBeInstanceOf(StanTimeoutError);
    expect(err.code).toBe(ErrorCode.ConnectTimeout);
    expect(err.message).toBe("stan: connect request timeout (possibly wrong cluster ID?)");
    expect(Date.now() - started).toBeLessThan(5_000); // not the 10 s connect timeout
  });

  it("publish resolves with the guid after the PubAck", async () => {
    const { session } = await setup();
    const guid = await session.publish("a", data);
    expect(guid).toMatch(/^[0-9A-Za-z]{22}$/);
    expect(session.pendingPublishes).toBe(0);
  });

  it("a pipelined publish whose ack fails and that nobody awaits is no unhandled rejection", async () => {
    const { session, server } = await setup();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      server.mode = "error";
      await session.send("a", data); // its `acked` is never looked at
      // acks come in order: once this one is refused, so was the ignored one
      await expect(session.publish("a", data)).rejects.toBeInstanceOf(StanServerError);
      server.mode = "hold";
      await session.send("a", data); // ignored too, rejected by close()
      expect(session.pendingPublishes).toBe(1);
      await session.close();
      expect(session.pendingPublishes).toBe(0);
      // Node reports unhandled rejections once the microtask queue is empty: after this turn
      await new Promise<void>((r) => setImmediate(r));
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  describe("sendBatch", () => {
    const until = async (cond: () => boolean) => {
      while (!cond()) await new Promise<void>((r) => setImmediate(r));
    };

    it("publishes in order within the window and resolves once every message is stored", async () => {
      const { session, server } = await setup({ maxPubAcksInflight: 16 });
      server.mode = "hold";
      const datas = Array.from({ length: 40 }, (_, i) => new Uint8Array([i]));
      let done = false;
      const batch = session.sendBatch("a", datas).finally(() => {
        done = true;
      });
      await until(() => server.held.length === 16);
      expect(session.pendingPublishes).toBe(16); // the window holds: 24 wait for room
      for (let i = 0; i < 2; i++) {
        server.release();
        await until(() => server.held.length > 0);
        expect(done).toBe(false);
      }
      server.mode = "ack";
      server.release();
      const { guids, failures } = await batch;
      expect(failures).toEqual([]);
      expect(new Set(guids).size).toBe(40);
      expect(server.guids).toEqual(guids); // in input order, each once
      expect(session.pendingPublishes).toBe(0);
    });

    it("reports each refused message by index instead of rejecting", async () => {
      const { session, server } = await setup();
      server.mode = "error";
      const { guids, failures } = await session.sendBatch("a", [data, data, data]);
      expect(failures.map((f) => f.index)).toEqual([0, 1, 2]);
      expect(failures.every((f) => f.error instanceof StanServerError)).toBe(true);
      expect(guids.every((g) => g.length === 22)).toBe(true);
    });

    it("checks every message against max_payload before sending any", async () => {
      const { session, server, nc } = await setup();
      const big = new Uint8Array(nc.info.max_payload);
      const err = await session.sendBatch("a", [data, data, big]).catch((e) => e);
      expect(err).toBeInstanceOf(StanArgumentError);
      expect(err.code).toBe(ErrorCode.MaxPayloadExceeded);
      expect(err.message).toMatch(
        /^stan: payload too large: message 2 of the batch .*nothing was sent$/,
      );
      await new Promise<void>((r) => setImmediate(r));
      expect(server.received).toBe(0);
      expect(await session.sendBatch("a", [])).toEqual({ guids: [], failures: [] });
    });

    it("close fails the sent messages and the ones still waiting for room", async () => {
      const { session, server } = await setup({ maxPubAcksInflight: 4 });
      server.mode = "hold";
      const batch = session.sendBatch(
        "a",
        Array.from({ length: 10 }, () => data),
      );
      await until(() => server.held.length === 4);
      await session.close();
      const { guids, failures } = await batch;
      expect(failures.map((f) => f.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(failures.every((f) => f.error instanceof StanConnectionError)).toBe(true);
      expect(failures[0]?.error.message).toBe("stan: connection closed");
      expect(guids.filter((g) => g !== "")).toHaveLength(4); // the rest were never sent
    });

    it("an aborted batch fails what is unacknowledged or unsent with StanAbortError", async () => {
      const { session, server } = await setup({ maxPubAcksInflight: 4 });
      server.mode = "hold";
      const ac = new AbortController();
      const batch = session.sendBatch(
        "a",
        Array.from({ length: 10 }, () => data),
        {
          signal: ac.signal,
        },
      );
      await until(() => server.held.length === 4);
      server.release(2); // two are stored before the abort; two more are sent in their room
      await until(() => server.held.length === 4);
      ac.abort();
      const { failures } = await batch;
      expect(failures.map((f) => f.index)).toEqual([2, 3, 4, 5, 6, 7, 8, 9]);
      expect(failures.every((f) => f.error instanceof StanAbortError)).toBe(true);
      expect(session.pendingPublishes).toBe(0);
    });
  });

  it("a PubAck error rejects with the server's text", async () => {
    const { session, server } = await setup();
    server.mode = "error";
    const err = await session.publish("a", data).catch((e) => e);
    expect(err).toBeInstanceOf(StanServerError);
    expect(err.message).toBe("stan: invalid publish request");
  });

  it("a pipelined burst reaches NATS together at the end of the turn, before any later request", async () => {
    const { server, session } = await setup({ maxPubAcksInflight: 1000 });
    const before = server.received;
    const sent = [];
    for (let i = 0; i < 300; i++) sent.push(await session.send("a", data));
    // a publish alone goes out at once; the rest of the burst waits in the outbox
    expect(server.received - before).toBeLessThan(10);
    await new Promise((r) => setImmediate(r));
    expect(server.received - before).toBe(300);
    await Promise.all(sent.map((s) => s.acked));
    expect(server.guids.slice(-300)).toEqual(sent.map((s) => s.guid)); // in order

    // a request (here: close) never overtakes queued publishes
    const guids = server.guids.length;
    for (let i = 0; i < 5; i++) await session.send("a", data);
    await session.close().catch(() => {});
    expect(server.guids.length - guids).toBe(5);
  });

  it("never has more than maxPubAcksInflight unacknowledged; the next waits for room", async () => {
    const { session, server } = await setup({ maxPubAcksInflight: 3 });
    server.mode = "hold";
    const sent = [];
    for (let i = 0; i < 3; i++) sent.push(await session.send("a", data));
    let fourthSent = false;
    const fourth = session.send("a", data).then((s) => {
      fourthSent = true;
      return s;
    });
    await new Promise((r) => setImmediate(r));
    expect(fourthSent).toBe(false);
    expect(session.pendingPublishes).toBe(3);
    expect(server.received).toBe(3);
    server.release(1);
    const s4 = await fourth;
    expect(session.pendingPublishes).toBe(3);
    await new Promise((r) => setImmediate(r)); // a pipelined publish reaches NATS at the end of the turn
    expect(server.received).toBe(4);
    server.release();
    await Promise.all([...sent.map((s) => s.acked), s4.acked]);
    expect(session.pendingPublishes).toBe(0);
  });

  it("an unacknowledged publish rejects with `stan: publish ack timeout` and frees its slot", async () => {
    vi.useFakeTimers();
    const { session, server } = await setup({ pubAckTimeout: 30_000, maxPubAcksInflight: 1 });
    server.mode = "hold";
    let settled = false;
    const result = session.publish("a", data).catch((e) => e);
    void result.then(() => {
      settled = true;
    });
    await vi.advanceTimersByTimeAsync(29_000);
    expect(settled).toBe(false); // not before its deadline
    await vi.advanceTimersByTimeAsync(2_000); // the sweep runs every second
    const err = await result;
    expect(err).toBeInstanceOf(StanTimeoutError);
    expect(err.code).toBe(ErrorCode.PubAckTimeout);
    expect(err.message).toBe("stan: publish ack timeout");
    expect(session.pendingPublishes).toBe(0);
    server.mode = "ack";
    await expect(session.publish("a", data)).resolves.toMatch(/.{22}/);
    vi.useRealTimers();
  });

  it("a per-call timeout shorter than pubAckTimeout is honoured", async () => {
    const { session, server } = await setup({ pubAckTimeout: 60_000 });
    server.mode = "hold";
    const err = await session.publish("a", data, { timeout: 50 }).catch((e) => e);
    expect(err.code).toBe(ErrorCode.PubAckTimeout);
  });

  it("aborting a publish that waits for room rejects it and gives no slot away", async () => {
    const { session, server } = await setup({ maxPubAcksInflight: 1 });
    server.mode = "hold";
    const first = await session.send("a", data);
    const ac = new AbortController();
    const waiting = session.send("a", data, { signal: ac.signal });
    ac.abort(new Error("user gave up"));
    const err = await waiting.catch((e) => e);
    expect(err).toBeInstanceOf(StanAbortError);
    expect(err.cause).toBeInstanceOf(Error);
    expect(server.received).toBe(1);
    server.release();
    await first.acked;
    await expect(session.publish("a", data, { timeout: 1000 }).then(() => server.received))
      .rejects.toBeDefined()
      .catch(() => {});
  });

  it("pings that get no responders end the session after pingMaxOut, rejecting pending work", async () => {
    vi.useFakeTimers();
    const { session, server, events } = await setup({ pingInterval: 5000, pingMaxOut: 2 });
    server.mode = "hold";
    const pending = session.publish("a", data).catch((e) => e);
    server.stopPings();
    const lostEvent = nextEvent(session, "connection-lost");
    await vi.advanceTimersByTimeAsync(5000);
    expect(events.filter((e) => e.type === "ping-missed")).toHaveLength(1);
    expect(session.isOpen).toBe(true);
    await vi.advanceTimersByTimeAsync(5000); // the second missed ping: interval x maxOut
    const lost = (await lostEvent) as Extract<SessionEvent, { type: "connection-lost" }>;
    expect(lost.error.message).toBe("stan: connection lost due to PING failure");
    const err = await pending;
    expect(err).toBeInstanceOf(StanConnectionError);
    expect(err.code).toBe(ErrorCode.ConnectionLost);
    expect(events.filter((e) => e.type === "ping-missed")).toHaveLength(2);
    expect(events.filter((e) => e.type === "connection-lost")).toHaveLength(1);
    await expect(session.publish("a", data)).rejects.toBe(lost.error);
  });

  it("a ping answered with an error (client replaced) ends the session with that text", async () => {
    const { session, server } = await setup({ pingInterval: 100 });
    server.pingError = "client has been replaced or is no longer registered";
    const lost = (await nextEvent(session, "connection-lost")) as Extract<
      SessionEvent,
      { type: "connection-lost" }
    >;
    expect(lost.error.message).toBe("client has been replaced or is no longer registered");
    expect(session.isOpen).toBe(false);
  });

  it("the NATS connection closing ends the session once", async () => {
    const { session, nc, events } = await setup();
    const lost = nextEvent(session, "connection-lost");
    await nc.close();
    await lost;
    await new Promise((r) => setImmediate(r));
    expect(events.filter((e) => e.type === "connection-lost")).toHaveLength(1);
    expect(session.error?.message).toBe("stan: NATS connection closed");
  });

  it("close rejects pending publishes with `stan: connection closed` and is idempotent", async () => {
    const { session, server } = await setup();
    server.mode = "hold";
    const pending = session.publish("a", data);
    await session.close();
    await session.close();
    const err = await pending.catch((e) => e);
    expect(err).toBeInstanceOf(StanConnectionError);
    expect(err.code).toBe(ErrorCode.ConnectionClosed);
    expect(err.message).toBe("stan: connection closed");
    await expect(session.publish("a", data)).rejects.toMatchObject({
      code: ErrorCode.ConnectionClosed,
    });
  });

  it("heals a lost session: registers again, re-sends the unacknowledged publish with its guid", async () => {
    const { session, server, events } = await setup({
      pingInterval: 50,
      pingMaxOut: 2,
      reconnect: { initialDelay: 10, maxDelay: 20 },
    });
    server.mode = "drop"; // the first send is never acked
    const pending = session.publish("a", data);
    await new Promise((r) => setImmediate(r));
    expect(server.guids).toHaveLength(1);
    server.stopPings();
    await nextEvent(session, "disconnected");
    server.mode = "ack";
    server.answerPings();
    await nextEvent(session, "reconnected");
    const guid = await pending;
    expect(server.guids).toEqual([guid, guid]); // same guid, sent twice: at-least-once
    expect(server.connects).toBe(2);
    expect(events.map((e) => e.type)).toEqual(
      expect.arrayContaining([
        "ping-missed",
        "disconnected",
        "reconnecting",
        "republished",
        "reconnected",
      ]),
    );
    expect(events.some((e) => e.type === "connection-lost")).toBe(false);
    expect(session.isOpen).toBe(true);
    await expect(session.publish("a", data)).resolves.toMatch(/.{22}/);
  });

  it("a publish made while healing waits and is sent once the session is back", async () => {
    const { session, server } = await setup({
      pingInterval: 50,
      pingMaxOut: 1,
      reconnect: { initialDelay: 10, maxDelay: 20 },
    });
    const discover = server.pauseDiscovery();
    server.stopPings();
    await nextEvent(session, "disconnected");
    const during = session.publish("a", data);
    await nextEvent(session, "reconnecting");
    expect(server.received).toBe(0);
    server.answerPings();
    discover.resume();
    await expect(during).resolves.toMatch(/.{22}/);
    expect(server.received).toBe(1);
  });

  it("a resubscribe that times out while healing (server gone again) heals again and keeps the subscription", async () => {
    const { nc, session, server, events } = await setup({
      connectTimeout: 100,
      pingInterval: 50,
      pingMaxOut: 2,
      reconnect: { initialDelay: 10, maxDelay: 20 },
    });
    // Subscription requests: answered while `answer` is set, otherwise left unanswered (as
    // when the streaming server stops between the reconnect and the resubscribe).
    let answer = true;
    let requests = 0;
    let unanswered!: () => void;
    const firstUnanswered = new Promise<void>((r) => {
      unanswered = r;
    });
    nc.subscribe("_STAN.sub.test-cluster", {
      callback: (_e, m) => {
        requests++;
        if (!answer) return unanswered();
        const resp = encode(SubscriptionResponseSchema, { ackInbox: `_ACK.${requests}` });
        if (m.reply) nc.publish(m.reply, resp);
      },
    });
    let ended: StanError | "no error" | undefined;
    const sub = await session.subscribe(
      {
        subject: "a",
        durableName: "d",
        maxInflight: 8,
        ackWaitSecs: 30,
        startPosition: StartPosition.First,
      },
      { deliver: () => {}, end: (e) => (ended = e ?? "no error") },
    );
    answer = false;
    server.stopPings();
    await nextEvent(session, "disconnected");
    server.answerPings();
    await firstUnanswered;
    // the timed-out resubscribe loses the session again instead of ending the subscription
    const again = await Promise.race([
      nextEvent(session, "disconnected"),
      nextEvent(session, "resubscribe-failed"),
    ]);
    expect(again.type).toBe("disconnected");
    expect(again.type === "disconnected" && again.error.message).toBe(
      "stan: resubscribe failed: stan: subscribe request timeout",
    );
    answer = true;
    await nextEvent(session, "reconnected");
    expect(events.some((e) => e.type === "resubscribe-failed")).toBe(false);
    expect(events.filter((e) => e.type === "resubscribed")).toHaveLength(1);
    expect(ended).toBeUndefined();
    expect(sub.isEnded).toBe(false);
    expect(sub.ackInbox).toBe(`_ACK.${requests}`);
    expect(server.connects).toBe(3);
  });

  const subParams = (subject: string) => ({
    subject,
    durableName: `d-${subject}`,
    maxInflight: 8,
    ackWaitSecs: 30,
    startPosition: StartPosition.First,
  });
  const noSink = { deliver: () => {}, end: () => {} };

  it("a healed session re-creates its subscriptions concurrently, a bounded number at a time", async () => {
    const { nc, session, server, events } = await setup({
      pingInterval: 50,
      pingMaxOut: 2,
      reconnect: { initialDelay: 10, maxDelay: 20 },
    });
    // Answered at once while subscribing; while healing, held until 16 are outstanding (or
    // all that remain), so sequential resubscribes would never be answered.
    let healing = false;
    let answered = 0;
    let maxOutstanding = 0;
    const held: string[] = [];
    const answer = (reply: string) => {
      answered++;
      nc.publish(reply, encode(SubscriptionResponseSchema, { ackInbox: `_ACK.${answered}` }));
    };
    nc.subscribe("_STAN.sub.test-cluster", {
      callback: (_e, m) => {
        if (!m.reply) return;
        if (!healing) return answer(m.reply);
        held.push(m.reply);
        maxOutstanding = Math.max(maxOutstanding, held.length);
        if (held.length === Math.min(16, 40 - (answered - 40))) {
          for (const r of held.splice(0)) answer(r);
        }
      },
    });
    const subs = [];
    for (let i = 0; i < 40; i++) subs.push(await session.subscribe(subParams(`s${i}`), noSink));
    healing = true;
    server.stopPings();
    await nextEvent(session, "disconnected");
    server.answerPings();
    await nextEvent(session, "reconnected");
    expect(maxOutstanding).toBe(16);
    expect(events.filter((e) => e.type === "resubscribed")).toHaveLength(40);
    expect(subs.every((s) => !s.isEnded)).toBe(true);
  });

  it("a transient resubscribe failure heals again only once the other requests in flight settled", async () => {
    const { nc, session, server, events } = await setup({
      connectTimeout: 100,
      pingInterval: 50,
      pingMaxOut: 2,
      reconnect: { initialDelay: 10, maxDelay: 20 },
    });
    let healing = false;
    let n = 0;
    let heldB: string | undefined;
    const answer = (reply: string) =>
      nc.publish(reply, encode(SubscriptionResponseSchema, { ackInbox: `_ACK.${++n}` }));
    nc.subscribe("_STAN.sub.test-cluster", {
      callback: (_e, m) => {
        if (!m.reply) return;
        const subject = decode(SubscriptionRequestSchema, m.data).subject;
        if (!healing) return answer(m.reply);
        if (subject === "a") return; // never answered: times out, a transient failure
        heldB = m.reply; // answered once a's request has timed out
      },
    });
    let disconnectsWhenBAnswered = -1;
    nc.subscribe("_STAN.subclose.test-cluster", {
      callback: (_e, m) => {
        // the best-effort close of a's timed-out request: b is still in flight
        if (decode(UnsubscribeRequestSchema, m.data).subject !== "a" || !heldB) return;
        disconnectsWhenBAnswered = events.filter((e) => e.type === "disconnected").length;
        healing = false;
        answer(heldB);
      },
    });
    const a = await session.subscribe(subParams("a"), noSink);
    const b = await session.subscribe(subParams("b"), noSink);
    healing = true;
    server.stopPings();
    await nextEvent(session, "disconnected");
    server.answerPings();
    const again = (await nextEvent(session, "disconnected")) as Extract<
      SessionEvent,
      { type: "disconnected" }
    >;
    expect(again.error.message).toBe("stan: resubscribe failed: stan: subscribe request timeout");
    // b's request was answered before the session was lost again, not dropped by it
    expect(disconnectsWhenBAnswered).toBe(1);
    await nextEvent(session, "reconnected");
    expect(a.isEnded || b.isEnded).toBe(false);
    expect(events.some((e) => e.type === "resubscribe-failed")).toBe(false);
  });

  it("healing gives up after maxAttempts and then fails everything once", async () => {
    const { session, server, events } = await setup({
      pingInterval: 50,
      pingMaxOut: 1,
      reconnect: { maxAttempts: 2, initialDelay: 10, maxDelay: 10 },
    });
    server.pauseDiscovery();
    server.stopPings();
    const lost = (await nextEvent(session, "connection-lost")) as Extract<
      SessionEvent,
      { type: "connection-lost" }
    >;
    expect(lost.error.message).toMatch(/^stan: reconnect gave up after 2 attempts/);
    expect(events.filter((e) => e.type === "reconnecting")).toHaveLength(2);
    await expect(session.publish("a", data)).rejects.toBe(lost.error);
  });
});
