import { StartPosition } from "@stan-ts/proto";
import { describe, expect, it, vi } from "vitest";
import { ErrorCode, Session, StanArgumentError, StanConnectionError } from "../src/index.js";
import { FakeNats, FakeStreamingServer } from "./fake-nats.js";
import { data, healing, nextEvent, options, setup, subServer } from "./session-fixtures.js";

describe("Session races (issue 15)", () => {
  it("item 3: a publish the NATS connection refuses rejects with a StanConnectionError and leaves nothing pending", async () => {
    const { nc, session } = await setup({ pubAckTimeout: 50 });
    const publish = nc.publish.bind(nc);
    nc.publish = () => {
      throw new Error("connection closed");
    };
    const err = await session.publish("a", data).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StanConnectionError);
    expect((err as StanConnectionError).code).toBe(ErrorCode.ConnectionClosed);
    expect(session.pendingPublishes).toBe(0);
    nc.publish = publish;
    // The old code left the entry pending: its ack timeout then rejected it with nobody
    // listening (an unhandled rejection, which fails this run). Wait past that timeout.
    await new Promise((r) => setTimeout(r, 120));
    await expect(session.publish("a", data)).resolves.toMatch(/./);
    await session.close();
  });

  it("item 4: a woken publish that fails (too large) passes the wake on; later publishes settle", async () => {
    const { nc, server, session } = await setup({ maxPubAcksInflight: 1 });
    server.mode = "hold";
    const first = session.publish("a", data);
    const big = session.publish("a", new Uint8Array(nc.info.max_payload + 1));
    const third = session.publish("a", data);
    await expect(big).rejects.toBeInstanceOf(StanArgumentError);
    server.mode = "ack";
    server.release();
    await expect(first).resolves.toMatch(/./);
    await expect(third).resolves.toMatch(/./);
    await session.close();
  });

  it("item 4 (guard): a waiter aborted around its wake passes the wake on", async () => {
    const { server, session } = await setup({ maxPubAcksInflight: 1 });
    server.mode = "hold";
    const first = session.publish("a", data);
    const ac = new AbortController();
    const second = session.publish("a", data, { signal: ac.signal });
    const third = session.publish("a", data);
    server.mode = "ack";
    server.release(); // wakes `second` ...
    await first;
    ac.abort(); // ... which is aborted before it runs
    await expect(second).rejects.toBeDefined();
    await expect(third).resolves.toMatch(/./);
    await session.close();
  });

  it("item 6: close() during a heal's connect request does not resurrect the session", async () => {
    const { nc, server, session } = await setup({
      pingInterval: 50,
      pingMaxOut: 2,
      reconnect: { initialDelay: 10, maxDelay: 20 },
    });
    let closeRequests = 0;
    nc.subscribe("_STAN.close.test-cluster", { callback: () => closeRequests++ });
    // Hold the heal's connect request, as a slow server would.
    const paused = server.pauseDiscovery();
    let held: { data: Uint8Array; reply: string } | undefined;
    const holder = nc.subscribe("_STAN.discover.test-cluster", {
      callback: (_e, m) => {
        held = { data: m.data, reply: m.reply as string };
      },
    });
    server.stopPings();
    await vi.waitFor(() => expect(held).toBeDefined());
    await session.close();
    holder.unsubscribe();
    server.answerPings();
    paused.resume();
    const before = server.connects;
    const h = held as { data: Uint8Array; reply: string };
    nc.publish("_STAN.discover.test-cluster", h.data, { reply: h.reply });
    // the held connect request is answered: the server registers the session again ...
    await vi.waitFor(() => expect(server.connects).toBe(before + 1));
    await vi.waitFor(() => expect(closeRequests).toBe(1)); // ... and it is released at once
    expect(session.isOpen).toBe(false);
    await expect(session.publish("a", data)).rejects.toBeInstanceOf(StanConnectionError);
  });

  const durable = {
    subject: "a",
    durableName: "d",
    maxInflight: 8,
    ackWaitSecs: 30,
    startPosition: StartPosition.First,
  };
  const noSink = { deliver: () => {}, end: () => {} };

  it("item 7: subscribe() and unsubscribe() during a heal wait for it instead of failing", async () => {
    const { nc, server, session } = await setup(healing);
    const subs = subServer(nc);
    const sub = await session.subscribe(durable, noSink);
    const paused = server.pauseDiscovery();
    server.stopPings();
    await nextEvent(session, "reconnecting");
    const second = session.subscribe({ ...durable, durableName: "e" }, noSink);
    const gone = sub.end(true);
    server.answerPings();
    paused.resume();
    await expect(second).resolves.toBeDefined();
    await expect(gone).resolves.toBeUndefined();
    // the durable was deleted with the ack inbox of the healed session
    expect(subs.ended).toHaveLength(1);
    expect(subs.ended[0]?.kind).toBe("unsub");
    expect(subs.ended[0]?.inbox).not.toBe("_ACK.1");
    await session.close();
  });

  it("item 8: sub.close() while the heal re-creates it uses the new ack inbox", async () => {
    const { nc, server, session } = await setup(healing);
    const subs = subServer(nc);
    const sub = await session.subscribe(durable, noSink);
    expect(sub.ackInbox).toBe("_ACK.1");
    subs.hold = true;
    server.stopPings();
    await nextEvent(session, "disconnected");
    server.answerPings();
    await vi.waitFor(() => expect(subs.held).toHaveLength(1));
    let oldInboxAcks = 0;
    nc.subscribe("_ACK.1", { callback: () => oldInboxAcks++ });
    sub.ack(1n); // dropped (the server redelivers), not sent to the dead inbox
    const closing = sub.end(false);
    await new Promise((r) => setImmediate(r));
    expect(subs.ended).toHaveLength(0);
    subs.hold = false;
    (subs.held.shift() as () => void)();
    await closing;
    expect(subs.ended).toEqual([{ kind: "subclose", inbox: "_ACK.2" }]);
    expect(oldInboxAcks).toBe(0);
    await session.close();
  });

  it("item 14: a publish timeout of NaN or Infinity is refused and holds no window slot", async () => {
    const { server, session } = await setup({ maxPubAcksInflight: 1 });
    server.mode = "drop";
    for (const timeout of [Number.NaN, Number.POSITIVE_INFINITY, -1]) {
      await expect(session.publish("a", data, { timeout })).rejects.toBeInstanceOf(
        StanArgumentError,
      );
      await expect(session.sendBatch("a", [data], { timeout })).rejects.toBeInstanceOf(
        StanArgumentError,
      );
    }
    expect(session.pendingPublishes).toBe(0);
    server.mode = "ack";
    await expect(session.publish("a", data)).resolves.toMatch(/./);
    await session.close();
  });

  it("item 13: a failed connect on a borrowed connection leaves no NATS subscription behind", async () => {
    const nc = new FakeNats();
    const live = new Set<string>();
    const subscribe = nc.subscribe.bind(nc);
    nc.subscribe = (subject, opts) => {
      const sub = subscribe(subject, opts);
      live.add(subject);
      return {
        unsubscribe: () => {
          live.delete(subject);
          sub.unsubscribe();
        },
      };
    };
    for (let i = 0; i < 3; i++) {
      await expect(Session.open(nc, options())).rejects.toBeDefined(); // no streaming server
    }
    expect([...live]).toEqual([]);
  });

  it("item 12: closed sessions on a borrowed connection are not held by its closed() promise", async () => {
    const nc = new FakeNats();
    new FakeStreamingServer(nc);
    let watches = 0;
    const closed = nc.closed.bind(nc);
    nc.closed = () => {
      watches++;
      return closed();
    };
    for (let i = 0; i < 50; i++) {
      const s = await Session.open(nc, options({ clientId: `c${i}` }));
      await s.close();
    }
    // one watcher per connection (the old code chained one per session, each keeping it alive)
    expect(watches).toBe(1);
    const live = await Session.open(nc, options({ clientId: "live" }));
    const lost = nextEvent(live, "connection-lost");
    await nc.close();
    await lost;
    expect(live.isOpen).toBe(false);
  });

  it("suspicious: a heal whose re-send NATS refuses ends the session instead of an unhandled rejection", async () => {
    const { nc, server, session } = await setup(healing);
    server.mode = "drop";
    const pending = session.publish("a", data);
    await new Promise((r) => setImmediate(r));
    server.stopPings();
    await nextEvent(session, "disconnected");
    const publish = nc.publish.bind(nc);
    nc.publish = (subject, payload, opts) => {
      if (subject.startsWith("_STAN.pub.")) throw new Error("connection draining");
      publish(subject, payload, opts);
    };
    server.answerPings();
    await expect(pending).rejects.toBeInstanceOf(StanConnectionError);
    expect(session.isOpen).toBe(false);
  });
});
