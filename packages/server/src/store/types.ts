/**
 * The store interface used by the server engine. All mutations are synchronous (a store
 * buffers them); `flush*()` makes them durable at the points server-behaviour.md §8 names.
 *
 * @internal
 */

/** A stored message: its sequence, server timestamp (ns) and the encoded MsgProto. */
export interface StoredMsg {
  readonly seq: number;
  readonly timestamp: bigint;
  /** MsgProto fields 1-5 encoded; sent as-is on first delivery. */
  readonly bytes: Buffer;
}

/** Per-channel message limits (0 = unlimited). */
export interface ChannelLimits {
  maxMsgs: number;
  maxBytes: number;
  /** Milliseconds; 0 = unlimited. */
  maxAge: number;
}

/** The server info kept by persistent stores. */
export interface ServerInfo {
  clusterId: string;
  discoverPrefix: string;
  pubPrefix: string;
  subRequests: string;
  unsubRequests: string;
  subCloseRequests: string;
  closeRequests: string;
  acksSubs: string;
}

/** A registered client. */
export interface ClientRecord {
  id: string;
  hbInbox: string;
  /** connID bytes as a latin1 string. */
  connID: string;
  protocol: number;
  pingInterval: number;
  pingMaxOut: number;
}

/** A subscription's persisted state (the Go server's SubState). */
export interface SubRecord {
  id: number;
  clientID: string;
  qGroup: string;
  inbox: string;
  ackInbox: string;
  maxInFlight: number;
  ackWaitInSecs: number;
  durableName: string;
  lastSent: number;
  isDurable: boolean;
  isClosed: boolean;
}

/** A subscription read back from a store, with its pending sequences. */
export interface RecoveredSub {
  record: SubRecord;
  pending: number[];
}

/** A channel read back from a store. */
export interface RecoveredChannel {
  name: string;
  store: ChannelStore;
  subs: RecoveredSub[];
}

/** Everything a persistent store recovered. */
export interface RecoveredState {
  info: ServerInfo;
  clients: ClientRecord[];
  channels: RecoveredChannel[];
}

/** The messages of one channel. */
export interface MessageLog {
  /** First available sequence (last+1 when all are gone; 0 when never used). */
  readonly first: number;
  /** Last assigned sequence (0 when never used). */
  readonly last: number;
  /** Number of messages held. */
  readonly count: number;
  /** Timestamp of the last message stored in this process run, 0n if none. */
  readonly lastTimestamp: bigint;
  /** Appends a message and applies the count/size limits. */
  append(msg: StoredMsg): void;
  /** The message with that sequence, if still stored. */
  lookup(seq: number): StoredMsg | undefined;
  /** First sequence whose timestamp is >= `ns`, per §5 TimeDeltaStart. */
  seqForTimestamp(ns: bigint): number;
  /** Makes appended messages durable (file store: write + optional fsync). */
  flush(): void;
}

/** A channel's stores: messages plus subscription records. */
export interface ChannelStore {
  readonly msgs: MessageLog;
  createSub(rec: SubRecord): void;
  updateSub(rec: SubRecord): void;
  deleteSub(id: number): void;
  addPending(id: number, seq: number): void;
  ack(id: number, seq: number): void;
  flushSubs(): void;
  /** Releases timers and files; `flush: false` drops buffered writes. */
  close(flush?: boolean): void;
}

/** A store: server info, clients and channels. */
export interface Store {
  /** "MEMORY" or "FILE". */
  readonly kind: string;
  /**
   * Opens the store. Returns the recovered state of a persistent store, or undefined when
   * there was nothing to recover (then {@link Store.init} is called).
   */
  recover(): RecoveredState | undefined;
  /** Records the server info of a fresh store. */
  init(info: ServerInfo): void;
  addClient(rec: ClientRecord): void;
  deleteClient(id: string): void;
  createChannel(name: string): ChannelStore;
  /** Deletes a channel and its data (MaxInactivity). */
  deleteChannel(name: string): void;
  /** Closes files and timers; `flush: false` drops buffered writes (crash simulation). */
  close(flush?: boolean): void;
}
