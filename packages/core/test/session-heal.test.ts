/**
 * Issue 15, remaining client items: acks, isOpen and unsubscribe during a heal, a subscribe
 * reply racing a heal, a max_payload that changes under the session. Engine against the fake.
 */
import { encode, MsgProtoSchema, StartPosition } from "@stan-ts/proto";
import { describe, expect, it, vi } from "vitest";
import {
  type DecodedMsg,
  ErrorCode,
  StanArgumentError,
  StanTimeoutError,
  type SubscribeParams,
} from "../src/index.js";
import type { FakeNats } from "./fake-nats.js";
import { data, healing, loseAndHold, nextEvent, setup, subServer } from "./session-fixtures.js";

const durable: SubscribeParams = {
  subject: "a",
  durableName: "d",
  maxInflight: 8,
  ackWaitSecs: 30,
  startPosition: StartPosition.First,
};

function sink() {
  const got: DecodedMsg[] = [];
  return { got, deliver: (m: DecodedMsg) => got.push(m), end: () => {} };
}

function deliver(nc: FakeNats, inbox: string, sequence: bigint, redelivered = false) {
  nc.publish(
    inbox,
    encode(MsgProtoSchema, {
      sequence,
      subject: "a",
      data,
      timestamp: 1000n + sequence,
      redelivered,
    }),
  );
}

describe("Session during a heal (issue 15)", () => {
  it("a durable's ack during a heal goes to the new ack inbox; the server's redelivered copy is dropped", async () => {
    const { nc, server, session } = await setup(healing);
    const subs = subServer(nc);
    const s = sink();
    const sub = await session.subscribe(durable, s);
    deliver(nc, sub.inbox, 1n);
    await vi.waitFor(() => expect(s.got).toHaveLength(1));
    const heal = await loseAndHold(server, session);
    expect(() => sub.ack(1n)).not.toThrow(); // kept, not dropped
    await heal();
    await vi.waitFor(() => expect(subs.acks).toEqual([{ inbox: "_ACK.2" }]));
    // the server had redelivered #1 before the ack reached it: the consumer acked it already
    deliver(nc, sub.inbox, 1n, true);
    deliver(nc, sub.inbox, 2n);
    await vi.waitFor(() => expect(s.got.map((m) => m.sequence)).toEqual([1n, 2n]));
    await vi.waitFor(() => expect(subs.acks).toHaveLength(2)); // the copy acked again
    await session.close();
  });

  it("a non-durable's ack during a heal is dropped: its old registration is gone, nothing is redelivered", async () => {
    const { nc, server, session } = await setup(healing);
    const subs = subServer(nc);
    const s = sink();
    const sub = await session.subscribe({ ...durable, durableName: undefined }, s);
    deliver(nc, sub.inbox, 1n);
    await vi.waitFor(() => expect(s.got).toHaveLength(1));
    const heal = await loseAndHold(server, session);
    expect(() => sub.ack(1n)).not.toThrow();
    await heal();
    // it resumes at #1 (the last received) and checks the server's first delivery: the same
    // message, so it is acked quietly, not handed out again
    deliver(nc, sub.inbox, 1n);
    deliver(nc, sub.inbox, 2n);
    await vi.waitFor(() => expect(s.got.map((m) => m.sequence)).toEqual([1n, 2n]));
    await vi.waitFor(() => expect(subs.acks).toEqual([{ inbox: "_ACK.2" }]));
    await session.close();
  });

  it("isOpen stays true while healing (isReconnecting true), false once closed", async () => {
    const { server, session } = await setup(healing);
    expect(session.isOpen).toBe(true);
    const heal = await loseAndHold(server, session);
    expect(session.isOpen).toBe(true); // calls are accepted and wait for the heal
    expect(session.isReconnecting).toBe(true);
    await heal();
    expect([session.isOpen, session.isReconnecting]).toEqual([true, false]);
    await session.close();
    expect([session.isOpen, session.isReconnecting]).toEqual([false, false]);
  });

  it("an unsubscribe whose wait for a heal times out deregisters: the heal does not re-create the durable", async () => {
    const { nc, server, session } = await setup(healing);
    const subs = subServer(nc);
    const sub = await session.subscribe(durable, sink());
    const heal = await loseAndHold(server, session);
    const err = await sub.end(true, { timeout: 30 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StanTimeoutError);
    expect((err as StanTimeoutError).code).toBe(ErrorCode.Timeout);
    await heal();
    expect(subs.requests).toBe(1); // the original one only
    expect(subs.ended).toEqual([]);
    expect((err as Error).message).toMatch(/durable "d" was not deleted/);
    await session.close();
  });

  it("a subscribe whose reply arrives while the session heals asks again once healed", async () => {
    const { nc, server, session } = await setup(healing);
    const subs = subServer(nc);
    subs.hold = true;
    const subscribing = session.subscribe(durable, sink());
    await vi.waitFor(() => expect(subs.held).toHaveLength(1));
    subs.hold = false;
    const heal = await loseAndHold(server, session);
    (subs.held.shift() as () => void)(); // the old session's reply, during the heal
    const healed = heal();
    const sub = await subscribing;
    await healed;
    expect(subs.requests).toBe(2);
    expect(sub.ackInbox).toBe("_ACK.2"); // the healed session's registration
    await session.close();
  });

  it("a subscribe whose old-session reply arrives after the heal completed asks again", async () => {
    const { nc, server, session } = await setup(healing);
    const subs = subServer(nc);
    subs.hold = true;
    const subscribing = session.subscribe(durable, sink());
    await vi.waitFor(() => expect(subs.held).toHaveLength(1));
    subs.hold = false;
    server.stopPings();
    await nextEvent(session, "disconnected");
    server.answerPings();
    await nextEvent(session, "reconnected");
    (subs.held.shift() as () => void)(); // late: the server dropped that registration at the heal
    const sub = await subscribing;
    expect(subs.requests).toBe(2);
    expect(sub.ackInbox).toBe("_ACK.2");
    await session.close();
  });

  it("a subscribe asked again after a heal stays within the call's own timeout", async () => {
    const { nc, server, session } = await setup(healing);
    const subs = subServer(nc);
    subs.hold = true;
    const subscribing = session.subscribe(durable, sink(), { timeout: 400 });
    await vi.waitFor(() => expect(subs.held).toHaveLength(1));
    const heal = await loseAndHold(server, session);
    (subs.held.shift() as () => void)(); // the old session's reply: it asks again once healed
    const err = await subscribing.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StanTimeoutError);
    // the wait for the heal had what was left of the 400 ms, not 400 ms again
    const ms = Number(/timed out after (\d+) ms/.exec((err as Error).message)?.[1]);
    expect(ms).toBeLessThan(400);
    await heal();
    await session.close();
  });

  it("max_payload is read at each publish: a NATS reconnect to a server with a smaller one is honoured", async () => {
    const { nc, session } = await setup();
    await expect(session.publish("a", new Uint8Array(2000))).resolves.toMatch(/./);
    (nc.info as { max_payload: number }).max_payload = 1000; // as nats.js's info after a reconnect
    const err = await session.publish("a", new Uint8Array(2000)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StanArgumentError);
    expect((err as StanArgumentError).code).toBe(ErrorCode.MaxPayloadExceeded);
    await expect(session.sendBatch("a", [new Uint8Array(2000)])).rejects.toBeInstanceOf(
      StanArgumentError,
    );
    await session.close();
  });
});
