// The embedded server in a program of your own: a file store that survives a restart, and a
// nats-server of its own that outlives the streaming server.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ServerOptions, startNatsServer, startServer } from "@stan-ts/server";
import { connect } from "stan-ts";

const dir = mkdtempSync(join(tmpdir(), "stan-example-"));
try {
  // nats-server from PATH (or NATS_SERVER_BIN) on a free loopback port
  await using nats = await startNatsServer();
  const options: ServerOptions = {
    natsUrl: nats.url,
    clusterId: "example",
    store: "file",
    dir,
    maxMsgs: 10_000, // per channel; the oldest are dropped beyond it
  };
  {
    await using server = await startServer(options);
    await using sc = await connect({
      clusterId: "example",
      clientId: "writer",
      servers: server.url,
    });
    for (let i = 1; i <= 3; i++) await sc.publish("audit", `entry ${i}`);
    console.log("stored 3 messages; stopping the streaming server");
  }
  // a new server on the same directory serves them again
  await using server = await startServer(options);
  await using sc = await connect({ clusterId: "example", clientId: "reader", servers: server.url });
  await using sub = await sc.subscribe("audit", { startAt: "first" });
  const seen: string[] = [];
  for await (const msg of sub) {
    seen.push(`#${msg.sequence} ${msg.string()}`);
    if (seen.length === 3) break;
  }
  console.log(`after the restart: ${seen.join(", ")}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
