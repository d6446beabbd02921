// Subscriber flow control: the server sends at most maxInflight unacknowledged messages, so a
// slow consumer slows the server down instead of filling the client's memory.
import { connect } from "stan-ts";
import { streamingServer } from "./lib/server.js";

await using server = await streamingServer();
await using sc = await connect({
  clusterId: server.clusterId,
  clientId: "slow-consumer",
  servers: server.url,
});

const acks: Promise<string>[] = [];
for (let i = 0; i < 2048; i++) acks.push((await sc.publishAsync("foo", "hello-world")).acked);
await Promise.all(acks);

await using sub = await sc.subscribe("foo", {
  startAt: "first",
  maxInflight: 128,
  manualAcks: true,
  ackWait: 30_000,
});
let received = 0;
let maxBuffered = 0;
for await (const msg of sub) {
  maxBuffered = Math.max(maxBuffered, sub.pending);
  if (received % 256 === 0) await new Promise((r) => setTimeout(r, 5)); // a slow consumer
  msg.ack();
  if (++received === 2048) break;
}
console.log(`received ${received}; the client never buffered more than ${maxBuffered} (limit 128)`);
