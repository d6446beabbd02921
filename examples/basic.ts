// Basic usage with a borrowed NATS connection: publish, replay with a callback, unsubscribe.
import { connect as natsConnect } from "nats";
import { connect } from "stan-ts";
import { streamingServer } from "./lib/server.js";

await using server = await streamingServer();
const nc = await natsConnect({ servers: server.url });
const sc = await connect({ clusterId: server.clusterId, clientId: "client-123", nc });

// each publish waits for the server's ack
await sc.publish("hi", "hello");
await sc.publish("hi", "world");

let received = 0;
let resolveBoth!: () => void;
const both = new Promise<void>((resolve) => {
  resolveBoth = resolve;
});
const sub = await sc.subscribe("hi", {
  startAt: "first",
  callback: (msg) => {
    console.log(`Received a message (seq=${msg.sequence}): ${msg.string()}`);
    if (++received === 2) resolveBoth();
  },
});
await both;

await sub.unsubscribe(); // stop receiving
await sc.close(); // end the streaming session
await nc.close(); // the NATS connection is borrowed: closing it is ours to do
console.log(`borrowed NATS connection closed: ${nc.isClosed()}`);
