// A real nats-streaming-server cluster (Raft over NATS, file stores) and a fault-tolerant pair
// (one shared file store), each node with its own embedded NATS routed to the others, on free
// loopback ports in a temporary directory. Nodes can be killed (-9) and started again.
// Each node's process: stan-node.ts; the route proxies of a partitionable cluster: route-proxy.ts.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HarnessError } from "./nats-server.js";
import { RouteProxy } from "./route-proxy.js";
import {
  describeNodes,
  freePorts,
  messageOf,
  Node,
  pollUntil,
  reachesServer,
} from "./stan-node.js";

/** The part of nats-streaming-server's `/streaming/serverz` monitoring answer the harness reads. */
export interface Serverz {
  readonly cluster_id: string;
  readonly server_id: string;
  readonly version: string;
  /** `CLUSTERED`, `FT_ACTIVE`, `FT_STANDBY`, `STANDALONE`, ... */
  readonly state: string;
  /** Clustered only: the Raft state, `Leader`, `Follower` or `Candidate`. */
  readonly role?: string;
  /** Clustered only: this node's ID. */
  readonly node_id?: string;
  readonly clients: number;
  readonly subscriptions: number;
  readonly channels: number;
  readonly total_msgs: number;
}

/** One nats-streaming-server process of a {@link StanCluster} or {@link StanFtPair}. */
export interface StanNode {
  /** Node ID (`a`, `b`, `c`, ...): the Raft node ID of a cluster node. */
  readonly id: string;
  /** NATS URL of the node's embedded NATS server, for clients. */
  readonly url: string;
  /** `http://127.0.0.1:<port>`, the monitoring endpoint. */
  readonly monitorUrl: string;
  /** `nats://127.0.0.1:<port>`, where the other nodes' NATS route to. */
  readonly clusterUrl: string;
  /** PID of the running process, undefined while it is not running. */
  readonly pid: number | undefined;
  readonly running: boolean;
  /** The node's last log lines (stderr), for failure messages. */
  log(): string;
  /** Its `/streaming/serverz`, or undefined when it does not answer (down, or starting). */
  serverz(): Promise<Serverz | undefined>;
  /** SIGKILL, as `kill -9` does, and waits for the exit. A no-op when not running. */
  kill(): Promise<void>;
  /** SIGTERM (SIGKILL after 5 s) and waits for the exit. A no-op when not running. */
  stop(): Promise<void>;
  /**
   * Starts the node again, with the same ports, store and options, and resolves once its
   * monitoring answers. Wait on {@link StanCluster.leader} or {@link StanFtPair.active} for
   * the group to settle. Throws when it is running.
   */
  start(): Promise<void>;
}

/** What a {@link StanCluster} and a {@link StanFtPair} have in common. */
export interface StanServerGroup extends AsyncDisposable {
  readonly clusterId: string;
  readonly nodes: readonly StanNode[];
  /** Every node's client URL: give them all to a client (`servers`). */
  readonly urls: readonly string[];
  /** The temporary directory of the stores (removed on dispose). */
  readonly dir: string;
  /** The node with this ID; throws for an unknown one. */
  node(id: string): StanNode;
}

/** A clustered nats-streaming-server (`-clustered`), started by {@link startStanCluster}. */
export interface StanCluster extends StanServerGroup {
  /**
   * Waits until the running nodes (of `among`, default all) agree: exactly one reports the
   * Raft role `Leader` and has finished its leader promotion (it serves clients), every other
   * one reports `Follower`, and a request through each one's NATS reaches the leader.
   * Resolves with that leader.
   *
   * @throws HarnessError with every node's state and log tail after `timeoutMs` (default 20 s).
   */
  leader(options?: { timeoutMs?: number; among?: readonly StanNode[] }): Promise<StanNode>;
  /**
   * Cuts `node` off from the other nodes: closes its route connections (both directions) and
   * refuses new ones until {@link StanCluster.heal}. Its clients stay connected to it. Needs
   * `partitionable: true`.
   */
  isolate(node: StanNode): void;
  /** Lets every route connect again after {@link StanCluster.isolate}. */
  heal(): void;
}

/** A fault-tolerant pair (`-ft_group`), started by {@link startStanFtPair}. */
export interface StanFtPair extends StanServerGroup {
  /**
   * Waits until exactly one running node is `FT_ACTIVE` and serving, every other running node
   * is `FT_STANDBY`, and a request through each one's NATS reaches the active. Resolves with
   * the active node.
   *
   * @throws HarnessError with every node's state and log tail after `timeoutMs` (default 20 s).
   */
  active(timeoutMs?: number): Promise<StanNode>;
}

/** Options shared by {@link startStanCluster} and {@link startStanFtPair}. */
export interface StanGroupOptions {
  /** @default "test-cluster" */
  clusterId?: string;
  /** Path of nats-streaming-server. @default the NATS_STREAMING_SERVER environment variable */
  bin?: string;
  /** More command-line arguments for every node (for example `["-SD"]`). */
  args?: readonly string[];
  /** Milliseconds to wait for the group to be ready. @default 20000 */
  readyTimeout?: number;
}

/** Options of {@link startStanCluster}. */
export interface StanClusterOptions extends StanGroupOptions {
  /** Number of nodes. @default 3 */
  size?: number;
  /**
   * Raft timings in milliseconds (the `streaming.cluster.raft_*_timeout` settings of a config
   * file). Shorter than the server's defaults (2 s, 2 s, 1 s) so that failover tests are fast.
   * @default { heartbeatTimeout: 500, electionTimeout: 500, leaseTimeout: 250 }
   */
  raft?: { heartbeatTimeout?: number; electionTimeout?: number; leaseTimeout?: number };
  /**
   * Route every node-to-node connection through a TCP proxy in this process (one per ordered
   * pair of nodes), so that {@link StanCluster.isolate} can cut a node off. The nodes then
   * advertise an unreachable route address, so that NATS's route gossip cannot add direct
   * connections around the proxies. @default false
   */
  partitionable?: boolean;
}

/** Options of {@link startStanFtPair}. */
export interface StanFtPairOptions extends StanGroupOptions {
  /** The FT group name (`--ft_group`). @default "ft" */
  group?: string;
}

/**
 * Why {@link startStanCluster} and {@link startStanFtPair} cannot run here, or undefined when
 * they can: they need the official binary, named by NATS_STREAMING_SERVER (CI's binary pass
 * sets it; `scripts/install-go-tools.sh` installs it). For `ctx.skip(reason !== undefined, reason)`.
 */
export function streamingBinaryUnavailable(
  bin = process.env.NATS_STREAMING_SERVER,
): string | undefined {
  if (!bin) {
    return "needs the official nats-streaming-server: set NATS_STREAMING_SERVER to its path (scripts/install-go-tools.sh installs v0.25.6)";
  }
  const probe = spawnSync(bin, ["--version"], { encoding: "utf8" });
  if (probe.error || probe.status !== 0) {
    return `NATS_STREAMING_SERVER=${bin} does not run (${probe.error?.message ?? `exit ${probe.status}`})`;
  }
  return undefined;
}

/**
 * Waits until, among the running nodes `considered()` returns, exactly one is `head` (by its
 * serverz) and serving, every other one is `other`, and a request through each one's NATS
 * reaches the server. Resolves with the head.
 */
function settled(
  g: Group,
  considered: () => Node[],
  head: (z: Serverz) => boolean,
  other: (z: Serverz) => boolean,
  what: string,
  timeoutMs: number,
): Promise<StanNode> {
  return pollUntil(
    async () => {
      const running = considered().filter((n) => n.running);
      const states = await Promise.all(running.map((n) => n.serverz()));
      const heads = running.filter((_, i) => states[i] !== undefined && head(states[i]));
      const rest = states.every((z) => z !== undefined && (head(z) || other(z)));
      if (heads.length !== 1 || !heads[0]!.serving || !rest) return undefined;
      const reach = await Promise.all(running.map((n) => reachesServer(n, g.clusterId)));
      return reach.every(Boolean) ? heads[0] : undefined;
    },
    timeoutMs,
    () => describeNodes(g.nodes, what, timeoutMs),
  );
}

/**
 * Runs `launch` again, on fresh ports, when a node could not listen because another process
 * took one of its ports between {@link freePorts} and the start (at most 3 attempts).
 */
async function withFreshPorts<T>(launch: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await launch();
    } catch (err) {
      if (attempt >= 3 || !/address already in use/i.test(messageOf(err))) throw err;
    }
  }
}

interface Group {
  readonly clusterId: string;
  readonly dir: string;
  readonly nodes: Node[];
}

function groupApi(g: Group): StanServerGroup {
  return {
    clusterId: g.clusterId,
    dir: g.dir,
    nodes: g.nodes,
    urls: g.nodes.map((n) => n.url),
    node(id: string): StanNode {
      const n = g.nodes.find((x) => x.id === id);
      if (!n)
        throw new HarnessError(`no node "${id}" (nodes: ${g.nodes.map((x) => x.id).join(", ")})`);
      return n;
    },
    [Symbol.asyncDispose]: async () => {
      await Promise.all(g.nodes.map((n) => n.stop()));
      rmSync(g.dir, { recursive: true, force: true });
    },
  };
}

function resolveBin(bin: string | undefined): string {
  const b = bin ?? process.env.NATS_STREAMING_SERVER;
  const reason = streamingBinaryUnavailable(b);
  if (reason !== undefined || !b) throw new HarnessError(reason ?? "no nats-streaming-server");
  return b;
}

/** Starts the nodes with `start()`; on a failure, stops those started and removes `dir`. */
async function startAll<T>(g: Group, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    await Promise.all(g.nodes.map((n) => n.kill()));
    rmSync(g.dir, { recursive: true, force: true });
    throw err instanceof HarnessError ? err : new HarnessError(messageOf(err), { cause: err });
  }
}

function ms(v: number): string {
  return `${Math.round(v)}ms`;
}

/**
 * Starts a clustered nats-streaming-server on loopback: `size` nodes (default 3), each with its
 * own embedded NATS routed to the others (`--cluster`, `--routes`), Raft over NATS
 * (`-clustered`, `-cluster_node_id`, `-cluster_peers`), a file store and a Raft log of its own
 * under a temporary directory. Resolves once a leader serves and the others follow.
 *
 * @example
 * ```ts
 * await using cluster = await startStanCluster();
 * const sc = await connect({ clusterId: cluster.clusterId, clientId: "me", servers: [...cluster.urls] });
 * await (await cluster.leader()).kill();
 * ```
 * @throws HarnessError when the binary is missing ({@link streamingBinaryUnavailable}) or a
 * node does not start, with its log.
 */
export async function startStanCluster(options: StanClusterOptions = {}): Promise<StanCluster> {
  const bin = resolveBin(options.bin);
  return withFreshPorts(() => launchCluster(bin, options));
}

async function launchCluster(bin: string, options: StanClusterOptions): Promise<StanCluster> {
  const size = options.size ?? 3;
  const clusterId = options.clusterId ?? "test-cluster";
  const readyTimeout = options.readyTimeout ?? 20_000;
  const raft = { heartbeatTimeout: 500, electionTimeout: 500, leaseTimeout: 250, ...options.raft };
  const dir = mkdtempSync(join(tmpdir(), "stan-ts-cluster-"));
  const conf = join(dir, "raft.conf");
  writeFileSync(
    conf,
    `streaming {\n  cluster {\n` +
      `    raft_heartbeat_timeout: "${ms(raft.heartbeatTimeout)}"\n` +
      `    raft_election_timeout: "${ms(raft.electionTimeout)}"\n` +
      `    raft_lease_timeout: "${ms(raft.leaseTimeout)}"\n  }\n}\n`,
  );
  const ids = Array.from({ length: size }, (_, i) => String.fromCharCode(97 + i));
  // per node: client, monitoring and route ports, and one unused (closed) port to advertise
  const ports = await freePorts(size * 4);
  const port = (i: number, k: number) => ports[i * 4 + k]!;
  const proxies: RouteProxy[] = [];
  if (options.partitionable) {
    try {
      for (const [i, from] of ids.entries()) {
        for (const [j, to] of ids.entries()) {
          if (i !== j) proxies.push(await RouteProxy.start(from, to, port(j, 2)));
        }
      }
    } catch (err) {
      await Promise.all(proxies.map((p) => p.close()));
      rmSync(dir, { recursive: true, force: true });
      throw new HarnessError(`route proxies: ${messageOf(err)}`, { cause: err });
    }
  }
  const routesOf = (i: number): string =>
    ids
      .map((to, j) =>
        j === i
          ? undefined
          : options.partitionable
            ? proxies.find((p) => p.from === ids[i] && p.to === to)!.url
            : `nats://127.0.0.1:${port(j, 2)}`,
      )
      .filter((u) => u !== undefined)
      .join(",");
  const nodes = ids.map((id, i) => {
    const p = { client: port(i, 0), monitor: port(i, 1), cluster: port(i, 2) };
    const args = [
      ...["-a", "127.0.0.1", "-p", String(p.client), "-m", String(p.monitor)],
      ...["--cluster", `nats://127.0.0.1:${p.cluster}`, "--routes", routesOf(i)],
      ...(options.partitionable ? ["--cluster_advertise", `127.0.0.1:${port(i, 3)}`] : []),
      ...["--cluster_name", `${clusterId}-nats`, "-cid", clusterId, "-sc", conf],
      ...["-clustered", "-cluster_node_id", id, "-cluster_peers", ids.join(",")],
      ...["-store", "file", "-dir", join(dir, id), "-cluster_log_path", join(dir, `${id}-raft`)],
      ...(options.args ?? []),
    ];
    return new Node(id, bin, args, p);
  });
  const g: Group = { clusterId, dir, nodes };
  const leader: StanCluster["leader"] = ({ timeoutMs = readyTimeout, among } = {}) =>
    settled(
      g,
      () => nodes.filter((n) => !among || among.includes(n)),
      (z) => z.role === "Leader",
      (z) => z.role === "Follower",
      "a serving leader, reachable through every node",
      timeoutMs,
    );
  const partitioned = (): void => {
    if (!options.partitionable) {
      throw new HarnessError("isolate/heal need startStanCluster({ partitionable: true })");
    }
  };
  await startAll(g, async () => {
    await Promise.all(nodes.map((n) => n.start(readyTimeout)));
    await leader();
  }).catch(async (err: unknown) => {
    await Promise.all(proxies.map((p) => p.close()));
    throw err;
  });
  const api = groupApi(g);
  return {
    ...api,
    leader,
    isolate: (node) => {
      partitioned();
      for (const p of proxies) if (p.from === node.id || p.to === node.id) p.cut();
    },
    heal: () => {
      partitioned();
      for (const p of proxies) p.restore();
    },
    [Symbol.asyncDispose]: async () => {
      await api[Symbol.asyncDispose]();
      await Promise.all(proxies.map((p) => p.close()));
    },
  };
}

/**
 * Starts a fault-tolerant pair of nats-streaming-servers on loopback (`--ft_group`), sharing
 * one file store in a temporary directory, each with its own embedded NATS, the two routed
 * together. The first node starts and becomes active, then the second starts as its standby.
 *
 * @throws HarnessError when the binary is missing ({@link streamingBinaryUnavailable}) or a
 * node does not start, with its log.
 */
export async function startStanFtPair(options: StanFtPairOptions = {}): Promise<StanFtPair> {
  const bin = resolveBin(options.bin);
  return withFreshPorts(() => launchFtPair(bin, options));
}

async function launchFtPair(bin: string, options: StanFtPairOptions): Promise<StanFtPair> {
  const clusterId = options.clusterId ?? "test-cluster";
  const readyTimeout = options.readyTimeout ?? 20_000;
  const group = options.group ?? "ft";
  const dir = mkdtempSync(join(tmpdir(), "stan-ts-ft-"));
  const ports = await freePorts(6);
  const routeUrls = [0, 1].map((i) => `nats://127.0.0.1:${ports[i * 3 + 2]}`);
  const nodes = ["a", "b"].map((id, i) => {
    const p = { client: ports[i * 3]!, monitor: ports[i * 3 + 1]!, cluster: ports[i * 3 + 2]! };
    const args = [
      ...["-a", "127.0.0.1", "-p", String(p.client), "-m", String(p.monitor)],
      ...["--cluster", routeUrls[i]!, "--routes", routeUrls[1 - i]!],
      ...["--cluster_name", `${clusterId}-nats`, "-cid", clusterId],
      ...["--ft_group", group, "-store", "file", "-dir", join(dir, "store")],
      ...(options.args ?? []),
    ];
    return new Node(id, bin, args, p);
  });
  const g: Group = { clusterId, dir, nodes };
  const active = (timeoutMs = readyTimeout): Promise<StanNode> =>
    settled(
      g,
      () => nodes,
      (z) => z.state === "FT_ACTIVE",
      (z) => z.state === "FT_STANDBY",
      "a serving FT_ACTIVE node, reachable through both",
      timeoutMs,
    );
  await startAll(g, async () => {
    await nodes[0]!.start(readyTimeout);
    await active();
    await nodes[1]!.start(readyTimeout);
    await active();
  });
  return { ...groupApi(g), active };
}
