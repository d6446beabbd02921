import { startServer } from "@stan-ts/server";
import { connect } from "stan-ts";

// The embedded streaming server: it starts its own nats-server on a free loopback port.
// (With a server of your own, skip this and pass its URL and cluster ID to connect().)
await using server = await startServer();
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
