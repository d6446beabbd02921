import { describe, expect, it } from "vitest";
import {
  clusterIdProblem,
  ErrorCode,
  MAX_SUBJECT_BYTES,
  StanArgumentError,
  validateSubject,
} from "../src/index.js";

describe("validateSubject: length", () => {
  it("accepts a channel of exactly 255 UTF-8 bytes", () => {
    const ascii = "a".repeat(MAX_SUBJECT_BYTES);
    expect(validateSubject(ascii)).toBe(ascii);
    const mixed = `${"é".repeat(127)}a`; // 127 x 2 bytes + 1
    expect(validateSubject(mixed)).toBe(mixed);
  });

  it("refuses 256 bytes, counting bytes rather than characters", () => {
    for (const s of ["a".repeat(256), "é".repeat(128), `${"a".repeat(100)}.${"€".repeat(52)}`]) {
      let err: unknown;
      try {
        validateSubject(s);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(StanArgumentError);
      expect((err as StanArgumentError).code).toBe(ErrorCode.InvalidArgument);
      expect((err as StanArgumentError).message).toMatch(
        /^stan: invalid subject ".{32}\.\.\.": \d+ bytes, over the limit of 255 \(a file store keeps each channel in a directory of that name\)$/,
      );
    }
  });
});

describe("clusterIdProblem: what a streaming server can serve", () => {
  it("accepts subject tokens, dotted or not", () => {
    for (const id of ["test-cluster", "a.b", "é_1"]) expect(clusterIdProblem(id)).toBeUndefined();
  });

  it("names the problem of an empty ID, spaces, wildcards and empty tokens", () => {
    expect(clusterIdProblem("")).toBe(
      "-cid/--cluster_id needs a cluster ID (for example test-cluster)",
    );
    for (const id of ["bad id", "a*", "a.>", ".a", "a.", "a..b", "tab\there"]) {
      expect(clusterIdProblem(id)).toMatch(
        new RegExp(`^invalid cluster ID "${id.replace(/[.*>\\]/g, "\\$&")}": no spaces`),
      );
    }
  });
});
