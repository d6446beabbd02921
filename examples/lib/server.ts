// Where the examples find a streaming server: the test harness's streamingServer()
// (@stan-ts/testing, private to this repository), so they run wherever the test suite runs.
// STAN_URL (+ STAN_CLUSTER_ID) when set: a server that is already running, for example a
// `docker compose up` nats-streaming-server; NATS_STREAMING_SERVER when set: that
// nats-streaming-server binary, started on a nats-server of the harness's; otherwise the
// embedded one, on its own nats-server on a free loopback port, with neither Docker nor Go.
import {
  jetStreamServer as harnessJetStream,
  streamingServer as harnessServer,
} from "@stan-ts/testing";

export interface ExampleServer extends AsyncDisposable {
  readonly url: string;
  readonly clusterId: string;
}

export function streamingServer(): Promise<ExampleServer> {
  return harnessServer();
}

/** A nats-server with JetStream (`-js`) on a free loopback port, for the JetStream example. */
export function jetStreamServer(): Promise<{ url: string } & AsyncDisposable> {
  return harnessJetStream();
}
