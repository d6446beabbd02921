// Where the examples find a streaming server: STAN_URL (+ STAN_CLUSTER_ID) when set, for
// example a `docker compose up` nats-streaming-server; otherwise the embedded one, which
// starts its own nats-server on a free loopback port and needs no Docker.
import { startServer } from "@stan-ts/server";

export interface ExampleServer extends AsyncDisposable {
  readonly url: string;
  readonly clusterId: string;
}

export async function streamingServer(): Promise<ExampleServer> {
  const url = process.env.STAN_URL;
  if (url) {
    const clusterId = process.env.STAN_CLUSTER_ID ?? "test-cluster";
    return { url, clusterId, [Symbol.asyncDispose]: async () => {} };
  }
  return startServer();
}
