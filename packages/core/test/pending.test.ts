import { describe, expect, it } from "vitest";
import { PendingQueue, type Queued } from "../src/pending.js";

interface Entry extends Queued {
  n: number;
}

function fill(q: PendingQueue<Entry>, count: number): Entry[] {
  const out: Entry[] = [];
  for (let i = 0; i < count; i++) {
    const e: Entry = { guid: q.nextGuid(), seq: 0, n: i };
    q.add(e);
    out.push(e);
  }
  return out;
}

describe("PendingQueue", () => {
  it("gives NUID-shaped, unique guids and finds each entry by its guid", () => {
    const q = new PendingQueue<Entry>();
    const entries = fill(q, 5000);
    const guids = entries.map((e) => e.guid);
    expect(new Set(guids).size).toBe(5000);
    for (const g of guids) expect(g).toMatch(/^[0-9A-Za-z]{22}$/);
    expect(new Set(guids.map((g) => g.slice(0, 12))).size).toBe(1); // one prefix per queue
    expect(new PendingQueue<Entry>().nextGuid().slice(0, 12)).not.toBe(guids[0]?.slice(0, 12));
    for (const e of entries) expect(q.find(e.guid)).toBe(e);
    expect(q.size).toBe(5000);
  });

  it("finds nothing for an unknown, settled, foreign or malformed guid", () => {
    const q = new PendingQueue<Entry>();
    const [a, b] = fill(q, 2) as [Entry, Entry];
    q.remove(a);
    expect(q.find(a.guid)).toBeUndefined(); // settled
    expect(q.find(b.guid)).toBe(b);
    const other = new PendingQueue<Entry>();
    expect(q.find(other.nextGuid())).toBeUndefined(); // another queue's prefix
    const prefix = b.guid.slice(0, 12);
    expect(q.find(`${prefix}0000000009`)).toBeUndefined(); // not sent yet
    expect(q.find(`${prefix}zzzzzzzzzz`)).toBeUndefined(); // far beyond
    expect(q.find(`${prefix}00000000-1`)).toBeUndefined(); // not base 62
    expect(q.find(`${prefix}00000000é1`)).toBeUndefined();
    expect(q.find(b.guid.slice(0, 21))).toBeUndefined();
    expect(q.find("")).toBeUndefined();
  });

  it("iterates live entries in send order, whatever order they settle in", () => {
    const q = new PendingQueue<Entry>();
    const entries = fill(q, 10);
    for (const i of [0, 3, 4, 9, 1]) q.remove(entries[i] as Entry);
    expect([...q].map((e) => e.n)).toEqual([2, 5, 6, 7, 8]);
    expect(q.size).toBe(5);
    q.remove(entries[3] as Entry); // twice: no effect
    expect(q.size).toBe(5);
  });

  it("keeps finding entries across compaction and after it drains, with new guids", () => {
    const q = new PendingQueue<Entry>();
    const first = fill(q, 5000);
    // settle all but the last 100 out of order: the front is dropped as it settles
    for (let i = 4899; i >= 0; i--) q.remove(first[i] as Entry);
    expect(q.size).toBe(100);
    for (const e of first.slice(4900)) expect(q.find(e.guid)).toBe(e);
    const more = fill(q, 3000);
    for (const e of first.slice(4900)) q.remove(e);
    for (const e of more) expect(q.find(e.guid)).toBe(e);
    expect([...q].map((e) => e.n)).toEqual(more.map((e) => e.n));
    for (const e of more) q.remove(e);
    expect(q.size).toBe(0);
    expect([...q]).toEqual([]);
    const later = fill(q, 3);
    expect(later.map((e) => e.guid)).not.toContain(first[0]?.guid);
    for (const e of later) expect(q.find(e.guid)).toBe(e);
    expect(q.find(first[0]?.guid as string)).toBeUndefined();
    q.clear();
    expect(q.size).toBe(0);
    for (const e of later) expect(q.find(e.guid)).toBeUndefined();
  });

  it("finds an entry from a guid's bytes in a received buffer, exactly", () => {
    const q = new PendingQueue<Entry>();
    const entries = fill(q, 300);
    const ascii = (g: string) => Uint8Array.from(g, (c) => c.charCodeAt(0));
    for (const e of entries) {
      const buf = new Uint8Array(30);
      buf.set(ascii(e.guid), 5);
      expect(q.findBytes(buf, 5)).toBe(e);
    }
    const g = (entries[7] as Entry).guid;
    const wrong = ascii(g);
    wrong[21] = wrong[21] === 48 ? 49 : 48; // another running number: another entry or none
    expect(q.findBytes(wrong, 0)).not.toBe(entries[7]);
    const foreign = ascii(g);
    foreign[0] = foreign[0] === 65 ? 66 : 65;
    expect(q.findBytes(foreign, 0)).toBeUndefined();
    const high = ascii(g);
    high[15] = 0xc3; // not base 62
    expect(q.findBytes(high, 0)).toBeUndefined();
    expect(q.findBytes(ascii(g).subarray(0, 20), 0)).toBeUndefined(); // too short
    q.remove(entries[7] as Entry);
    expect(q.findBytes(ascii(g), 0)).toBeUndefined();
  });

  it("stays proportional to what is pending when an early entry is never settled", () => {
    const q = new PendingQueue<Entry>();
    const [stuck] = fill(q, 1) as [Entry]; // its ack is lost: it waits for its timeout
    const window: Entry[] = [];
    let maxSlots = 0;
    for (let i = 0; i < 300_000; i++) {
      window.push(...fill(q, 1));
      if (window.length > 1000) q.remove(window.shift() as Entry); // in order, 1000 in flight
      maxSlots = Math.max(maxSlots, q.slots);
    }
    expect(maxSlots).toBeLessThan(20_000); // not 300,000 settled slots behind the stuck one
    expect(q.size).toBe(1001);
    expect(q.find(stuck.guid)).toBe(stuck);
    for (const e of window) expect(q.find(e.guid)).toBe(e);
    expect([...q].map((e) => e.seq)).toEqual([stuck.seq, ...window.map((e) => e.seq)]);
    q.remove(stuck);
    expect(q.find(stuck.guid)).toBeUndefined();
    expect(q.size).toBe(1000);
    for (const e of window) q.remove(e);
    expect(q.size).toBe(0);
    expect([...q]).toEqual([]);
  });
});
