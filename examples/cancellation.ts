// Every call that waits takes { signal, timeout }; `await using` closes what it opened.
import { connect, ErrorCode, hasErrorCode } from "stan-ts";
import { streamingServer } from "./lib/server.js";

await using server = await streamingServer();
{
  await using sc = await connect({
    clusterId: server.clusterId,
    clientId: "cancellation",
    servers: server.url,
    timeout: 5000, // a deadline for the streaming handshake
  });

  // a deadline for one publish (its ack)
  await sc.publish("jobs", "quick", { timeout: 2000 });

  // an AbortSignal: here an operation is cancelled before it could start
  const ac = new AbortController();
  ac.abort(new Error("shutting down"));
  const err = await sc.subscribe("jobs", { signal: ac.signal }).catch((e: unknown) => e);
  console.log(`aborted: ${hasErrorCode(err, ErrorCode.Aborted)} (cause: ${(err as Error).cause})`);

  // AbortSignal.timeout() works too
  await using sub = await sc.subscribe("jobs", {
    startAt: "first",
    signal: AbortSignal.timeout(2000),
  });
  for await (const msg of sub) {
    console.log(`got ${msg.string()}`);
    break;
  }
  console.log(`connection open inside the block: ${sc.isOpen}`);
  // leaving the block disposes `sub`, then `sc`: subscription closed, session closed
}
console.log("closed on scope exit");
