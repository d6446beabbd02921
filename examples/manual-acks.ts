// Manual acks and redelivery: what is not acked within ackWait comes back.
import { connect } from "stan-ts";
import { streamingServer } from "./lib/server.js";

await using server = await streamingServer();
await using sc = await connect({
  clusterId: server.clusterId,
  clientId: "manual-acker",
  servers: server.url,
});

for (let i = 1; i <= 3; i++) await sc.publish("foo", `task-${i}`);

// ackWait 1 s: the server redelivers any message not acked within a second
await using sub = await sc.subscribe("foo", { startAt: "first", manualAcks: true, ackWait: 1000 });
let done = 0;
for await (const msg of sub) {
  const note = msg.redelivered ? ` (redelivery #${msg.redeliveryCount})` : "";
  console.log(`got #${msg.sequence} ${msg.string()}${note}`);
  if (msg.sequence === 2n && !msg.redelivered) continue; // "fails": not acked, comes back
  msg.ack(); // or sub.ack(msg)
  if (++done === 3) break;
}
