import { describe, expect, it } from "vitest";
import { createInbox, Nuid } from "../src/index.js";

describe("Nuid", () => {
  it("makes 22-character base-62 ids, unique over many calls", () => {
    const n = new Nuid();
    const seen = new Set<string>();
    const shape = /^[0-9A-Za-z]{22}$/;
    let malformed = 0;
    for (let i = 0; i < 100_000; i++) {
      const id = n.next();
      if (!shape.test(id)) malformed++;
      seen.add(id);
    }
    expect(malformed).toBe(0);
    expect(seen.size).toBe(100_000);
  });

  it("two generators do not share a prefix", () => {
    expect(new Nuid().next().slice(0, 12)).not.toBe(new Nuid().next().slice(0, 12));
  });

  it("inboxes are _INBOX.<nuid>", () => {
    expect(createInbox()).toMatch(/^_INBOX\.[0-9A-Za-z]{22}$/);
  });
});
