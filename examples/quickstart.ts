import { connect } from "stan-ts";
import { streamingServer } from "./lib/server.js";

await using server = await streamingServer();
console.log(`streaming server ready at ${server.url} (cluster "${server.clusterId}")`);

await using sc = await connect({
  clusterId: server.clusterId,
  clientId: "quickstart",
  servers: server.url,
});
console.log(`connected as "${sc.clientId}"`);

// publish resolves once the server has stored the message
const guid = await sc.publish("greetings", "hello, NATS Streaming");
console.log(`published; the server acknowledged guid ${guid}`);

// replay from the first stored message
await using sub = await sc.subscribe("greetings", { startAt: "first" });
for await (const msg of sub) {
  console.log(`received #${msg.sequence} on "${msg.subject}": ${msg.string()}`);
  break; // leaving the loop closes the subscription
}
console.log("round trip complete");
