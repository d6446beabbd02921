import { ErrorCode, StanConnectionError, withCancel } from "@stan-ts/core";
import { type NatsConnection, connect as natsConnect } from "nats";
import {
  type Backend,
  type ConnectOptions,
  resolveConnectOptions,
  type StanConnection,
} from "stan-ts";
import { JetStreamConnection } from "./connection.js";
import { StanNotSupportedError } from "./errors.js";
import { type JetStreamBackendOptions, resolveBackendOptions } from "./options.js";

/**
 * The JetStream backend for `connect()` of `stan-ts`: the same {@link StanConnection} API on
 * a NATS server running JetStream (`nats-server -js`), instead of NATS Streaming.
 *
 * Of the connect options, `clientId` names durables (as in STAN), `servers`, `nc` and
 * `natsOptions` give the NATS connection, `connectTimeout` bounds each JetStream API request,
 * `pubAckTimeout` and `maxPubAcksInflight` rule publishing as before. The STAN session options
 * (`pingInterval`, `pingMaxOut`, `discoverPrefix`, `reconnect`, `waitForClientId`) have no
 * meaning here: the NATS client reconnects by itself and JetStream keeps no client sessions.
 *
 * @example
 * ```ts
 * const sc = await connect({ clusterId: "c", clientId: "me", backend: jetstream({ replicas: 3 }) });
 * ```
 * @throws StanArgumentError for bad options; StanNotSupportedError for a borrowed connection
 * without the `nats` 2.x JetStream API, or a STAN channel limit JetStream lacks.
 */
export function jetstream(options?: JetStreamBackendOptions): Backend {
  const backend = resolveBackendOptions(options);
  return {
    connect(o: ConnectOptions): Promise<StanConnection> {
      const resolved = resolveConnectOptions(o);
      let made: StanConnection | undefined;
      let ownNc: NatsConnection | undefined;
      let lost = false;
      const work = (async () => {
        const given = o.nc as unknown as NatsConnection | undefined;
        if (given && typeof given.jetstream !== "function") {
          throw new StanNotSupportedError(
            "stan: the borrowed connection has no jetstream(): the JetStream backend runs on a `nats` 2.x connection; pass one, or servers instead of nc",
          );
        }
        let nc = given;
        if (!nc) {
          const servers = o.servers ?? "nats://127.0.0.1:4222";
          try {
            nc = await natsConnect({
              servers,
              name: resolved.clientId,
              maxReconnectAttempts: -1,
              timeout: resolved.connectTimeout,
              ...o.natsOptions,
            });
          } catch (err) {
            throw new StanConnectionError(
              ErrorCode.ConnectFailed,
              `stan: cannot connect to NATS at ${servers}: ${(err as Error).message} (is a NATS server with JetStream listening there?)`,
              { cause: err },
            );
          }
          ownNc = nc;
          if (lost) void nc.close().catch(() => {});
        }
        try {
          const jsm = await nc.jetstreamManager({ timeout: resolved.connectTimeout });
          const js = nc.jetstream({ timeout: resolved.connectTimeout });
          const sc = new JetStreamConnection(nc, js, jsm, o, backend, !given, {
            request: resolved.connectTimeout,
            pubAck: resolved.pubAckTimeout,
            window: resolved.maxPubAcksInflight,
          });
          made = sc;
          if (lost) void sc.close().catch(() => {});
          return sc;
        } catch (err) {
          if (!given) await nc.close().catch(() => {});
          throw new StanConnectionError(
            ErrorCode.ConnectFailed,
            `stan: JetStream is not available on the NATS server: ${(err as Error).message} (start nats-server with -js)`,
            { cause: err },
          );
        }
      })();
      work.catch(() => {});
      return withCancel(work, o, "connect", () => {
        lost = true;
        if (made) void made.close().catch(() => {});
        else if (ownNc) void ownNc.close().catch(() => {});
      });
    },
  };
}
