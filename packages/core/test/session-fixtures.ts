/** Shared fixtures of the engine tests: options, a session on the fake, event waits. */
import {
  decode,
  encode,
  SubscriptionResponseSchema,
  UnsubscribeRequestSchema,
} from "@stan-ts/proto";
import { Session, type SessionEvent, type SessionOptions } from "../src/index.js";
import { FakeNats, FakeStreamingServer } from "./fake-nats.js";

export const data = new Uint8Array([1, 2, 3]);

export function options(over: Partial<SessionOptions> = {}): SessionOptions {
  return {
    clusterId: "test-cluster",
    clientId: "unit",
    connectTimeout: 500,
    pubAckTimeout: 30_000,
    maxPubAcksInflight: 16,
    pingInterval: 60_000,
    pingMaxOut: 3,
    discoverPrefix: "_STAN.discover",
    reconnect: false,
    ...over,
  };
}

export async function setup(over: Partial<SessionOptions> = {}) {
  const nc = new FakeNats();
  const server = new FakeStreamingServer(nc);
  const session = await Session.open(nc, options(over));
  const events: SessionEvent[] = [];
  session.onEvent((e) => events.push(e));
  return { nc, server, session, events };
}

export function nextEvent(session: Session, type: SessionEvent["type"]): Promise<SessionEvent> {
  return new Promise((resolve) => {
    const off = session.onEvent((e) => {
      if (e.type === type) {
        off();
        resolve(e);
      }
    });
  });
}

/** Short pings and quick retries: a session that heals itself within a few tens of ms. */
export const healing = {
  pingInterval: 50,
  pingMaxOut: 2,
  reconnect: { initialDelay: 10, maxDelay: 20 },
};

/**
 * Loses the session (pings unanswered) with the server's discovery paused, so the heal waits;
 * resolves once it is reconnecting, with a function that lets the heal complete.
 */
export async function loseAndHold(
  server: FakeStreamingServer,
  session: Session,
): Promise<() => Promise<void>> {
  const paused = server.pauseDiscovery();
  server.stopPings();
  await nextEvent(session, "reconnecting");
  return async () => {
    server.answerPings();
    const reconnected = nextEvent(session, "reconnected");
    paused.resume();
    await reconnected;
  };
}

/**
 * A subscription responder on the fake: ack inboxes `_ACK.<n>` (n counts requests), answers
 * that can be held, and a record of acks and of unsubscribe/close requests.
 */
export function subServer(nc: FakeNats) {
  const state = {
    requests: 0,
    hold: false,
    held: [] as Array<() => void>,
    ended: [] as Array<{ kind: string; inbox: string }>,
    acks: [] as Array<{ inbox: string }>,
  };
  nc.subscribe("_STAN.sub.test-cluster", {
    callback: (_e, m) => {
      const ackInbox = `_ACK.${++state.requests}`;
      nc.subscribe(ackInbox, { callback: () => state.acks.push({ inbox: ackInbox }) });
      const answer = () => {
        if (m.reply) nc.publish(m.reply, encode(SubscriptionResponseSchema, { ackInbox }));
      };
      if (state.hold) state.held.push(answer);
      else answer();
    },
  });
  for (const kind of ["unsub", "subclose"]) {
    nc.subscribe(`_STAN.${kind}.test-cluster`, {
      callback: (_e, m) => {
        state.ended.push({ kind, inbox: decode(UnsubscribeRequestSchema, m.data).inbox });
        if (m.reply) nc.publish(m.reply, encode(SubscriptionResponseSchema, {}));
      },
    });
  }
  return state;
}
