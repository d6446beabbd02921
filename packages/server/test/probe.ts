/**
 * Probes for the first sign of life of a starting server, as fast as a client harness could
 * be: a TCP connect retried every millisecond (the port), an HTTP GET retried the same way
 * (the monitoring port), and a raw-protocol STAN ConnectRequest sent on the first
 * connection the port accepts and re-sent on every "no responders" status until one is
 * answered (the engine). Raw sockets, no NATS client library: the probe adds no start-up
 * work of its own. Used by bench/startup.ts and the readiness tests.
 */
import { connect as tcpConnect } from "node:net";
import { ConnectRequestSchema, ConnectResponseSchema, decode, encode } from "@stan-ts/proto";

/**
 * Milliseconds between connect attempts: tighter than any harness polls, yet not a busy loop
 * that would take a core from the server starting on a 2-core machine.
 */
const RETRY_MS = 1;

/** Milliseconds since `t0` (performance.now()) when the event happened. */
export type Since = number;

function sinceT0(t0: number): Since {
  return performance.now() - t0;
}

/** Resolves when a TCP connect to 127.0.0.1:`port` succeeds; retries every millisecond until `deadline`. */
export function probePort(port: number, t0: number, deadline = 10_000): Promise<Since> {
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = tcpConnect({ port, host: "127.0.0.1" });
      s.once("connect", () => {
        resolve(sinceT0(t0));
        s.destroy();
      });
      s.once("error", () => {
        s.destroy();
        if (sinceT0(t0) > deadline) reject(new Error(`port ${port} not open after ${deadline} ms`));
        else setTimeout(attempt, RETRY_MS);
      });
    };
    attempt();
  });
}

/**
 * GETs `path` from 127.0.0.1:`port`, retrying the connect every millisecond until it is
 * accepted; resolves with when it was accepted, the status and the body.
 */
export function probeHttp(
  port: number,
  path: string,
  t0: number,
  deadline = 10_000,
): Promise<{ at: Since; status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = tcpConnect({ port, host: "127.0.0.1" });
      let text = "";
      let at = 0;
      s.setEncoding("utf8");
      s.once("connect", () => {
        at = sinceT0(t0);
        s.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
      });
      s.on("data", (c: string) => {
        text += c;
      });
      s.once("end", () => {
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
        const body = text.slice(text.indexOf("\r\n\r\n") + 4);
        if (m) resolve({ at, status: Number(m[1]), body });
        else reject(new Error(`no HTTP answer on port ${port}: ${JSON.stringify(text)}`));
      });
      s.once("error", () => {
        s.destroy();
        if (at > 0) reject(new Error(`port ${port} dropped the request`));
        else if (sinceT0(t0) > deadline)
          reject(new Error(`port ${port} not open after ${deadline} ms`));
        else setTimeout(attempt, RETRY_MS);
      });
    };
    attempt();
  });
}

/** What {@link probeConnect} saw. */
export interface ConnectProbe {
  /** When the port first accepted the probe's TCP connection. */
  accepted: Since;
  /** When the first ConnectResponse arrived. */
  answered: Since;
  /** ConnectRequests that met "no responders" (the engine was not subscribed yet). */
  unanswered: number;
  /** The first ConnectResponse's error field ("" when the connect was accepted). */
  error: string;
}

/** Options of {@link probeConnect}. */
export interface ConnectProbeOptions {
  /** Cluster ID. @default "test-cluster" */
  clusterId?: string;
  /**
   * Send one ConnectRequest only, on the first connection, and fail unless it is answered
   * within `timeout`: what a client that connects at the first sign of life and does not
   * retry experiences. @default false (retry on "no responders")
   */
  once?: boolean;
  /** Milliseconds after t0 to give up. @default 10000 */
  deadline?: number;
}

/**
 * Connects to 127.0.0.1:`port` at the first instant it accepts and sends a STAN
 * ConnectRequest on `_STAN.discover.<clusterId>`, announcing headers and no_responders so a
 * request nobody is subscribed to comes back at once as status 503 (then it is re-sent with
 * a new client ID 1 ms later, unless `once`). Resolves at the first ConnectResponse.
 */
export function probeConnect(
  port: number,
  t0: number,
  opts: ConnectProbeOptions = {},
): Promise<ConnectProbe> {
  const cid = opts.clusterId ?? "test-cluster";
  const deadline = opts.deadline ?? 10_000;
  const prefix = `probe${process.pid}x${Math.floor(t0)}`;
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined = setTimeout(
      () => reject(new Error(`no ConnectResponse within ${deadline} ms`)),
      deadline,
    );
    const done = (fn: () => void) => {
      if (!timer) return;
      clearTimeout(timer);
      timer = undefined;
      fn();
    };
    const attempt = () => {
      if (!timer) return;
      const s = tcpConnect({ port, host: "127.0.0.1", noDelay: true });
      let accepted = 0;
      let unanswered = 0;
      let buf: Buffer = Buffer.alloc(0);
      let started = false;
      const request = () => {
        const payload = encode(ConnectRequestSchema, {
          clientID: `${prefix}-${unanswered}`,
          heartbeatInbox: `_INBOX.${prefix}.hb${unanswered}`,
          protocol: 1,
          connID: new TextEncoder().encode(`${prefix}-${unanswered}`),
          pingInterval: 5,
          pingMaxOut: 3,
        });
        // one write: three small ones would meet Nagle + delayed ACK (a 40 ms stall)
        s.write(
          Buffer.concat([
            Buffer.from(`PUB _STAN.discover.${cid} _INBOX.${prefix}.r ${payload.length}\r\n`),
            payload,
            Buffer.from("\r\n"),
          ]),
        );
      };
      s.once("connect", () => {
        accepted = sinceT0(t0);
      });
      s.on("data", (chunk: Buffer) => {
        buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
        for (;;) {
          const eol = buf.indexOf("\r\n");
          if (eol < 0) return;
          const line = buf.subarray(0, eol).toString("latin1");
          if (line.startsWith("INFO ")) {
            buf = buf.subarray(eol + 2);
            if (started) continue;
            started = true;
            s.write(
              `CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"protocol":1,"name":"probe"}\r\nSUB _INBOX.${prefix}.r 1\r\n`,
            );
            request();
            continue;
          }
          if (line.startsWith("PING")) {
            s.write("PONG\r\n");
            buf = buf.subarray(eol + 2);
            continue;
          }
          const m = /^(H?MSG) \S+ \S+ (?:\S+ )?(?:(\d+) )?(\d+)$/.exec(line);
          if (!m) {
            buf = buf.subarray(eol + 2);
            continue;
          }
          const total = Number(m[3]);
          if (buf.length < eol + 2 + total + 2) return;
          const body = buf.subarray(eol + 2, eol + 2 + total);
          buf = buf.subarray(eol + 2 + total + 2);
          if (m[1] === "HMSG") {
            // a status-only message: 503 no responders
            unanswered++;
            if (opts.once) {
              done(() => reject(new Error("the first ConnectRequest met no responders")));
              s.destroy();
              return;
            }
            setTimeout(request, RETRY_MS); // not a busy loop through nats-server
            continue;
          }
          const answered = sinceT0(t0);
          const resp = decode(ConnectResponseSchema, new Uint8Array(body));
          done(() => resolve({ accepted, answered, unanswered, error: resp.error }));
          s.destroy();
          return;
        }
      });
      s.once("error", () => {
        s.destroy();
        if (!started) setTimeout(attempt, RETRY_MS);
      });
    };
    attempt();
  });
}
