// Moving to JetStream: the same code on a nats-server started with -js, through one option.
import { jetstream } from "@stan-ts/jetstream";
import { connect } from "stan-ts";
import { jetStreamServer } from "./lib/server.js";

await using server = await jetStreamServer(); // nats-server -js on a free loopback port
await using sc = await connect({
  clusterId: "test-cluster", // kept for the API: JetStream has none
  clientId: "worker-1",
  servers: server.url,
  backend: jetstream(), // each channel a stream; see packages/jetstream/README.md
});
for (let i = 1; i <= 3; i++) await sc.publish("orders", { id: i });

await using sub = await sc.subscribe("orders", { durableName: "billing", startAt: "first" });
for await (const msg of sub) {
  console.log(`#${msg.sequence} ${msg.string()}`);
  if (msg.sequence === 3n) break; // a durable consumer: it keeps its position
}
