// Durable subscriptions: the server remembers the position across restarts of the client.
import { connect } from "stan-ts";
import { streamingServer } from "./lib/server.js";

await using server = await streamingServer();
const opts = { clusterId: server.clusterId, servers: server.url };
await using publisher = await connect({ ...opts, clientId: "publisher" });

for (let i = 1; i <= 40; i++) await publisher.publish("foo", `hello-${i}`);

// First run of the consumer: processes and acks 1..40, then goes away. Manual acks make the
// last one count too (in auto-ack mode a message is acked when the next one is pulled, and
// leaving the loop after #40 would leave #40 to be redelivered).
{
  await using sc = await connect({ ...opts, clientId: "client-123" });
  const sub = await sc.subscribe("foo", { durableName: "bar", startAt: "first", manualAcks: true });
  let last = 0n;
  for await (const msg of sub) {
    msg.ack();
    last = msg.sequence;
    if (last === 40n) break; // leaving the loop closes the subscription; the durable stays
  }
  console.log(`first run: processed up to #${last}`);
}

// While the consumer is away, 41..80 are published.
for (let i = 41; i <= 80; i++) await publisher.publish("foo", `hello-${i}`);

// Same clientID and durable name: it picks up where it left off.
await using sc = await connect({ ...opts, clientId: "client-123" });
await using sub = await sc.subscribe("foo", { durableName: "bar", manualAcks: true });
let count = 0;
let first = 0n;
for await (const msg of sub) {
  msg.ack();
  if (count++ === 0) first = msg.sequence;
  if (msg.sequence === 80n) break;
}
console.log(`second run: resumed at #${first}, received ${count} messages`);
