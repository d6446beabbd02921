import { FrameSubjectError, isFrameSubject } from "@stan-ts/core";
import { describe, expect, it } from "vitest";

describe("frame subjects", () => {
  it("refuses empty, whitespace and control characters", () => {
    for (const bad of ["", "a b c", "a\r\nPUB x 1", "a\tb", "a\u0000b", "a\u007f"]) {
      expect(isFrameSubject(bad)).toBe(false);
    }
    expect(isFrameSubject("_INBOX.abc.def")).toBe(true);
    const e = new FrameSubjectError("subject", "a b");
    expect(e.code).toBe("INVALID_ARGUMENT");
    expect(e.message).toContain("whitespace");
  });
});
