import type { ConnectOptions } from "../../src/index.js";

/**
 * Client settings for fault scenarios: loss detected in 3 x 200 ms, healing retried every
 * 50-250 ms, NATS reconnects every 50 ms, PubAcks awaited 3 s, at most 128 in flight.
 */
export const faultClient = {
  pingInterval: 200,
  pingMaxOut: 3,
  pubAckTimeout: 3000,
  maxPubAcksInflight: 128,
  reconnect: { initialDelay: 50, maxDelay: 250 },
  natsOptions: { reconnectTimeWait: 50 },
} as const satisfies Partial<ConnectOptions>;
