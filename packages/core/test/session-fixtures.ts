/** Shared fixtures of the engine tests: options, a session on the fake, event waits. */
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
