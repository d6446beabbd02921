// Errors are typed: a class per kind, a stable `code`, and the official message texts.
import {
  connect,
  ErrorCode,
  hasErrorCode,
  isStanError,
  StanArgumentError,
  StanServerError,
  StanTimeoutError,
} from "stan-ts";
import { streamingServer } from "./lib/server.js";

await using server = await streamingServer();

// a wrong cluster ID fails fast: nobody answers the discover request
try {
  await connect({ clusterId: "wrong-cluster", clientId: "errors", servers: server.url });
} catch (err) {
  if (err instanceof StanTimeoutError) console.log(`${err.code}: ${err.message}`);
}

await using sc = await connect({
  clusterId: server.clusterId,
  clientId: "errors",
  servers: server.url,
});

// bad input is refused before anything is sent, with a message that says what to change
for (const subject of ["orders.*", "", "a..b"]) {
  try {
    await sc.publish(subject, "x");
  } catch (err) {
    if (err instanceof StanArgumentError) console.log(`${err.code}: ${err.message}`);
  }
}

// the server's refusals carry its text
await using first = await sc.subscribe("orders", { durableName: "audit" });
try {
  await sc.subscribe("orders", { durableName: "audit" });
} catch (err) {
  if (err instanceof StanServerError) console.log(`${err.code}: ${err.message}`);
}

// guards work across duplicate copies of the package, where instanceof may not
const err = await sc.publish("orders", new Uint8Array(2 * 1024 * 1024)).catch((e: unknown) => e);
console.log(
  `stan error: ${isStanError(err)}, payload too large: ${hasErrorCode(err, ErrorCode.MaxPayloadExceeded)}`,
);
console.log(`still connected: ${sc.isOpen}, subscription open: ${!first.isClosed}`);
