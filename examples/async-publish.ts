// Pipelined publishing: do not wait for each ack; handle acks as they arrive.
import { connect } from "stan-ts";
import { streamingServer } from "./lib/server.js";

await using server = await streamingServer();
await using sc = await connect({
  clusterId: server.clusterId,
  clientId: "async-publisher",
  servers: server.url,
});

let acked = 0;
const acks: Promise<void>[] = [];
for (let i = 0; i < 1024; i++) {
  // resolves as soon as the message is sent (waiting only when the ack window is full)
  const { guid, acked: ack } = await sc.publishAsync("foo", "hello-world");
  // the "ack handler": runs when the server has stored the message
  acks.push(
    ack.then(
      (g) => {
        if (g !== guid) throw new Error("ack for another message");
        acked++;
      },
      (err: Error) => console.log(`publish ${guid} failed: ${err.message}`),
    ),
  );
}
await Promise.all(acks);
console.log(`published 1024 messages, ${acked} acks received`);

let received = 0;
await using sub = await sc.subscribe("foo", { startAt: "first" });
for await (const msg of sub) {
  if (++received === 1024) {
    console.log(`replayed all ${received}, last sequence #${msg.sequence}`);
    break;
  }
}
