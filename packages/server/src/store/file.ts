import {
  closeSync,
  existsSync,
  fdatasyncSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
  writevSync,
} from "node:fs";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { readMsgHeader } from "../codec.js";
import { MemoryLog } from "./memory.js";
import type {
  ChannelLimits,
  ChannelStore,
  ClientRecord,
  RecoveredChannel,
  RecoveredState,
  ServerInfo,
  Store,
  StoredMsg,
  SubRecord,
} from "./types.js";

/**
 * Record framing of every journal file: `u32 LE length | u32 LE CRC32 | type | body`,
 * where length and CRC cover `type | body`. A record that runs past the end of the file or
 * fails its CRC is a torn tail: the file is truncated there.
 */
const HEADER = 8;

const T_MSG = 1;
const T_FLOOR = 2;
const T_SUB = 1;
const T_SUB_DELETE = 3;
const T_ACK = 4;
const T_PENDING = 5;
const T_CLIENT_ADD = 1;
const T_CLIENT_DEL = 2;

function frame(type: number, body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER + 1 + body.length);
  out.writeUInt32LE(body.length + 1, 0);
  out[HEADER] = type;
  out.set(body, HEADER + 1);
  out.writeUInt32LE(crc32(out.subarray(HEADER)), 4);
  return out;
}

function idSeq(id: number, seq: number): Buffer {
  const b = Buffer.allocUnsafe(12);
  b.writeUInt32LE(id, 0);
  b.writeDoubleLE(seq, 4);
  return b;
}

/** An append-only journal file with group writes. */
class Journal {
  private fd: number;
  private buffered: Buffer[] = [];
  /** Records appended since the file was last rewritten. */
  records = 0;

  constructor(
    private readonly path: string,
    private readonly sync: boolean,
    private readonly onTorn: (path: string, offset: number) => void,
  ) {
    this.fd = openSync(path, "a+");
  }

  /** Reads every intact record; truncates a torn tail. */
  read(visit: (type: number, body: Buffer) => void): void {
    const data = readFileSync(this.path);
    let pos = 0;
    while (pos < data.length) {
      if (pos + HEADER + 1 > data.length) break;
      const len = data.readUInt32LE(pos);
      const crc = data.readUInt32LE(pos + 4);
      const end = pos + HEADER + len;
      if (len < 1 || end > data.length) break;
      const payload = data.subarray(pos + HEADER, end);
      if (crc32(payload) !== crc) break;
      visit(payload[0]!, payload.subarray(1));
      this.records++;
      pos = end;
    }
    if (pos < data.length) {
      this.onTorn(this.path, pos);
      ftruncateSync(this.fd, pos);
      fdatasyncSync(this.fd);
    }
  }

  append(type: number, body: Uint8Array): void {
    this.buffered.push(frame(type, body));
    this.records++;
  }

  get dirty(): boolean {
    return this.buffered.length > 0;
  }

  /** Writes buffered records to the OS, then fsyncs when `sync` (or `force`) is set. */
  flush(force = false): void {
    if (this.buffered.length === 0) return;
    const bufs = this.buffered;
    this.buffered = [];
    for (let i = 0; i < bufs.length; i += 1024) writevSync(this.fd, bufs.slice(i, i + 1024));
    if (this.sync || force) fdatasyncSync(this.fd);
  }

  size(): number {
    return fstatSync(this.fd).size;
  }

  /** Atomically replaces the file with the given records. */
  rewrite(records: Buffer[]): void {
    this.buffered = [];
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, "w");
    for (let i = 0; i < records.length; i += 1024) writevSync(fd, records.slice(i, i + 1024));
    fdatasyncSync(fd);
    closeSync(fd);
    renameSync(tmp, this.path);
    closeSync(this.fd);
    this.fd = openSync(this.path, "a+");
    this.records = records.length;
  }

  close(flush = true): void {
    if (flush) this.flush();
    this.buffered = [];
    closeSync(this.fd);
  }
}

interface SubState {
  rec: SubRecord;
  pending: Set<number>;
}

class FileChannel implements ChannelStore {
  readonly msgs: MemoryLog & { flush(): void };
  private readonly msgJournal: Journal;
  private readonly subJournal: Journal;
  private readonly subs = new Map<number, SubState>();

  constructor(
    readonly dir: string,
    limits: ChannelLimits,
    sync: boolean,
    onTorn: (path: string, offset: number) => void,
  ) {
    mkdirSync(dir, { recursive: true });
    this.msgJournal = new Journal(join(dir, "msgs.dat"), sync, onTorn);
    this.subJournal = new Journal(join(dir, "subs.dat"), sync, onTorn);
    const journal = this.msgJournal;
    const log = new MemoryLog(limits, 40, (m) => journal.append(T_MSG, m.bytes));
    log.flush = () => {
      journal.flush();
      if (log.dropped > 10_000 && log.dropped > log.count) this.compactMessages();
    };
    this.msgs = log;
  }

  /** Loads messages and subscriptions from disk. */
  recover(): RecoveredChannel["subs"] {
    const log = this.msgs;
    this.msgJournal.read((type, body) => {
      if (type === T_FLOOR) {
        log.setFloor(Number(body.toString("utf8")));
      } else if (type === T_MSG) {
        const bytes = Buffer.from(body);
        const { sequence, timestamp } = readMsgHeader(bytes);
        log.load({ seq: sequence, timestamp, bytes } satisfies StoredMsg);
      }
    });
    log.enforceLimits();
    log.startAgeTimer();
    const maxSeen = new Map<number, number>();
    this.subJournal.read((type, body) => {
      if (type === T_SUB) {
        const rec = JSON.parse(body.toString("utf8")) as SubRecord;
        const prev = this.subs.get(rec.id);
        this.subs.set(rec.id, { rec, pending: prev?.pending ?? new Set() });
        return;
      }
      const id = body.readUInt32LE(0);
      const s = this.subs.get(id);
      if (type === T_SUB_DELETE) {
        this.subs.delete(id);
        return;
      }
      if (!s) return;
      const seq = body.readDoubleLE(4);
      if (type === T_PENDING) {
        s.pending.add(seq);
        if (seq > (maxSeen.get(id) ?? 0)) maxSeen.set(id, seq);
      } else if (type === T_ACK) {
        s.pending.delete(seq);
      }
    });
    const out: RecoveredChannel["subs"] = [];
    for (const s of this.subs.values()) {
      s.rec.lastSent = Math.max(s.rec.lastSent, maxSeen.get(s.rec.id) ?? 0);
      out.push({ record: { ...s.rec }, pending: [...s.pending].sort((a, b) => a - b) });
    }
    this.compactSubs();
    return out;
  }

  private compactMessages(): void {
    const log = this.msgs;
    const records: Buffer[] = [frame(T_FLOOR, Buffer.from(String(log.first - 1)))];
    for (const m of log.messages()) records.push(frame(T_MSG, m.bytes));
    this.msgJournal.rewrite(records);
    log.dropped = 0;
  }

  private compactSubs(): void {
    const records: Buffer[] = [];
    for (const s of this.subs.values()) {
      records.push(frame(T_SUB, Buffer.from(JSON.stringify(s.rec))));
      for (const seq of s.pending) records.push(frame(T_PENDING, idSeq(s.rec.id, seq)));
    }
    this.subJournal.rewrite(records);
  }

  createSub(rec: SubRecord): void {
    this.subs.set(rec.id, { rec: { ...rec }, pending: new Set() });
    this.subJournal.append(T_SUB, Buffer.from(JSON.stringify(rec)));
  }
  updateSub(rec: SubRecord): void {
    const s = this.subs.get(rec.id);
    if (s) s.rec = { ...rec };
    else this.subs.set(rec.id, { rec: { ...rec }, pending: new Set() });
    this.subJournal.append(T_SUB, Buffer.from(JSON.stringify(rec)));
  }
  deleteSub(id: number): void {
    if (!this.subs.delete(id)) return;
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32LE(id, 0);
    this.subJournal.append(T_SUB_DELETE, b);
  }
  addPending(id: number, seq: number): void {
    const s = this.subs.get(id);
    if (!s) return;
    s.pending.add(seq);
    if (seq > s.rec.lastSent) s.rec.lastSent = seq;
    this.subJournal.append(T_PENDING, idSeq(id, seq));
  }
  ack(id: number, seq: number): void {
    const s = this.subs.get(id);
    if (!s?.pending.delete(seq)) return;
    this.subJournal.append(T_ACK, idSeq(id, seq));
  }
  flushSubs(): void {
    if (!this.subJournal.dirty) return;
    this.subJournal.flush();
    let live = 0;
    for (const s of this.subs.values()) live += 1 + s.pending.size;
    if (this.subJournal.records > 4 * live + 50_000) this.compactSubs();
  }
  close(flush = true): void {
    this.msgs.close();
    this.msgJournal.close(flush);
    this.subJournal.close(flush);
  }
}

/** Options of {@link FileStore}. */
export interface FileStoreOptions {
  /** fsync on each flush. @default true */
  sync: boolean;
  /** Called when a torn tail is truncated. */
  onTorn?: (path: string, offset: number) => void;
}

/**
 * The file store: a directory with `server.dat`, `clients.dat` and one directory per
 * channel holding `msgs.dat` and `subs.dat` journals (length + CRC32 framed records).
 * Messages are also kept in RAM; the journals make them survive restarts and kill -9.
 *
 * @internal
 */
export class FileStore implements Store {
  readonly kind = "FILE";
  private clientJournal: Journal | undefined;
  private readonly clients = new Map<string, ClientRecord>();
  private readonly channels = new Map<string, FileChannel>();
  private autoSync: NodeJS.Timeout | undefined;
  private readonly onTorn: (path: string, offset: number) => void;

  constructor(
    private readonly dir: string,
    private readonly limitsFor: (channel: string) => ChannelLimits,
    private readonly opts: FileStoreOptions,
  ) {
    this.onTorn = opts.onTorn ?? (() => {});
  }

  recover(): RecoveredState | undefined {
    mkdirSync(this.dir, { recursive: true });
    this.clientJournal = new Journal(join(this.dir, "clients.dat"), false, this.onTorn);
    this.autoSync = setInterval(() => {
      for (const c of this.channels.values()) c.flushSubs();
    }, 1000);
    this.autoSync.unref();
    const infoPath = join(this.dir, "server.dat");
    if (!existsSync(infoPath)) return undefined;
    const info = JSON.parse(readFileSync(infoPath, "utf8")) as ServerInfo;
    this.clientJournal.read((type, body) => {
      if (type === T_CLIENT_ADD) {
        const rec = JSON.parse(body.toString("utf8")) as ClientRecord;
        this.clients.set(rec.id, rec);
      } else if (type === T_CLIENT_DEL) {
        this.clients.delete(body.toString("utf8"));
      }
    });
    this.clientJournal.rewrite(
      [...this.clients.values()].map((c) => frame(T_CLIENT_ADD, Buffer.from(JSON.stringify(c)))),
    );
    const channels: RecoveredChannel[] = [];
    for (const entry of readdirSync(this.dir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const name = entry.name;
      if (!existsSync(join(this.dir, name, "msgs.dat"))) continue;
      const ch = this.openChannel(name);
      channels.push({ name, store: ch, subs: ch.recover() });
    }
    return { info, clients: [...this.clients.values()], channels };
  }

  init(info: ServerInfo): void {
    const path = join(this.dir, "server.dat");
    writeFileSync(`${path}.tmp`, JSON.stringify(info));
    const fd = openSync(`${path}.tmp`, "r+");
    fdatasyncSync(fd);
    closeSync(fd);
    renameSync(`${path}.tmp`, path);
  }

  addClient(rec: ClientRecord): void {
    this.clients.set(rec.id, rec);
    this.clientJournal?.append(T_CLIENT_ADD, Buffer.from(JSON.stringify(rec)));
    this.clientJournal?.flush();
  }

  deleteClient(id: string): void {
    if (!this.clients.delete(id)) return;
    this.clientJournal?.append(T_CLIENT_DEL, Buffer.from(id));
    this.clientJournal?.flush();
  }

  createChannel(name: string): ChannelStore {
    return this.openChannel(name);
  }

  deleteChannel(name: string): void {
    const ch = this.channels.get(name);
    if (!ch) return;
    ch.close(false);
    this.channels.delete(name);
    rmSync(ch.dir, { recursive: true, force: true });
  }

  private openChannel(name: string): FileChannel {
    const ch = new FileChannel(
      join(this.dir, name),
      this.limitsFor(name),
      this.opts.sync,
      this.onTorn,
    );
    this.channels.set(name, ch);
    return ch;
  }

  close(flush = true): void {
    if (this.autoSync) clearInterval(this.autoSync);
    for (const c of this.channels.values()) c.close(flush);
    this.channels.clear();
    this.clientJournal?.close();
    this.clientJournal = undefined;
  }
}
