// Publisher flow control: at most maxPubAcksInflight publishes wait for their ack; further
// publishes wait for room instead of piling up in memory.
import { connect } from "stan-ts";
import { streamingServer } from "./lib/server.js";

await using server = await streamingServer();
await using sc = await connect({
  clusterId: server.clusterId,
  clientId: "rate-limited-publisher",
  servers: server.url,
  maxPubAcksInflight: 512,
});

let maxInFlight = 0;
const acks: Promise<string>[] = [];
for (let i = 0; i < 2048; i++) {
  const { acked } = await sc.publishAsync("foo", "hello-world");
  acks.push(acked);
  maxInFlight = Math.max(maxInFlight, sc.pendingPublishes);
}
await Promise.all(acks);
console.log(`2048 published; never more than ${maxInFlight} awaiting an ack (limit 512)`);
