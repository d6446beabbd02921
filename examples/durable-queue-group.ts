// Durable queue groups keep their position when every member has left.
import { connect } from "stan-ts";
import { streamingServer } from "./lib/server.js";

await using server = await streamingServer();
const opts = { clusterId: server.clusterId, servers: server.url };
await using publisher = await connect({ ...opts, clientId: "publisher" });
for (let i = 1; i <= 10; i++) await publisher.publish("foo", `job-${i}`);

// one member works through 1..10 and leaves (close, not unsubscribe: the group stays)
{
  await using worker = await connect({ ...opts, clientId: "worker-a" });
  const sub = await worker.subscribe("foo", {
    queue: "bar",
    durableName: "durable", // the server stores the group as "durable:bar"
    startAt: "first",
    manualAcks: true,
  });
  for await (const msg of sub) {
    msg.ack();
    if (msg.sequence === 10n) break;
  }
  console.log("worker-a processed jobs 1-10 and left; the group is now empty");
}

for (let i = 11; i <= 15; i++) await publisher.publish("foo", `job-${i}`);

// a new member joins the same durable group and continues where the group stopped
await using worker = await connect({ ...opts, clientId: "worker-b" });
await using sub = await worker.subscribe("foo", {
  queue: "bar",
  durableName: "durable",
  manualAcks: true,
});
const seen: string[] = [];
for await (const msg of sub) {
  msg.ack();
  seen.push(msg.string());
  if (msg.sequence === 15n) break;
}
console.log(`worker-b continued with: ${seen.join(", ")}`);

// a ":" in the durable name of a queue subscriber is refused before anything is sent
await worker.subscribe("foo", { queue: "bar", durableName: "a:b" }).catch((err: Error) => {
  console.log(`refused: ${err.message}`);
});
