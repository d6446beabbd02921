import { describe, expect, it } from "vitest";
import {
  ErrorCode,
  hasErrorCode,
  type Payload,
  StanArgumentError,
  StanDecodeError,
  StanError,
} from "../src/index.js";
import { channel, client, take, useServer } from "./helpers.js";

const srv = useServer();

describe("Payload: what a publish takes", () => {
  it("refuses undefined with a StanArgumentError that says what to pass; nothing is sent", async () => {
    await using sc = await client(srv());
    const ch = channel();
    // @ts-expect-error data is required: publish(subject) is a type error
    const none = sc.publish(ch);
    await expect(none).rejects.toBeInstanceOf(StanArgumentError);
    await expect(none).rejects.toMatchObject({
      code: ErrorCode.InvalidArgument,
      message: expect.stringContaining(
        "stan: data is undefined: pass a Uint8Array, a string or a JSON value",
      ),
    });
    // @ts-expect-error undefined is not a Payload
    await expect(sc.publishAsync(ch, undefined)).rejects.toThrow(/data is undefined/);
    // @ts-expect-error undefined is not a Payload
    const batch = sc.publishBatch(ch, ["a", undefined, "c"]);
    await expect(batch).rejects.toThrow("stan: message 1 of the batch is undefined");
    // Nothing reached the channel: the first message there is the one published now.
    await sc.publish(ch, "");
    await using sub = await sc.subscribe(ch, { startAt: "first" });
    const [first] = await take(sub[Symbol.asyncIterator](), 1);
    expect(first?.sequence).toBe(1n);
    expect(first?.data.length).toBe(0);
  });

  it("takes bytes, strings, numbers, booleans, null, objects and arrays", () => {
    const ok: Payload[] = [new Uint8Array(1), "s", 1, true, null, { a: 1 }, [1, "x"]];
    expect(ok).toHaveLength(7);
  });
});

describe("msg.json() on a payload that is not JSON", () => {
  it("throws a StanDecodeError (DECODE_FAILED) with the subject and the sequence", async () => {
    await using sc = await client(srv());
    const ch = channel();
    await sc.publish(ch, '{"ok":true}');
    await sc.publish(ch, "not json");
    await using sub = await sc.subscribe(ch, { startAt: "first" });
    const [good, bad] = await take(sub[Symbol.asyncIterator](), 2);
    expect(good?.json()).toEqual({ ok: true });
    let caught: unknown;
    try {
      bad?.json();
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(StanDecodeError);
    expect(caught).toBeInstanceOf(StanError);
    expect(caught).not.toBeInstanceOf(StanArgumentError);
    expect(hasErrorCode(caught, ErrorCode.DecodeFailed)).toBe(true);
    const e = caught as StanDecodeError;
    expect(e.subject).toBe(ch);
    expect(e.sequence).toBe(2n);
    expect(e.name).toBe("StanDecodeError");
    expect(e.message).toContain(`stan: message 2 on "${ch}" is not valid JSON`);
    expect(e.cause).toBeInstanceOf(SyntaxError);
  });
});
