/**
 * The string of a field that repeats from message to message (a channel's name, a
 * publisher's clientID): the last one decoded is returned again while its bytes are the
 * same, instead of decoding them again. Used by the client's and the embedded server's
 * codecs.
 *
 * @internal
 */
export class RecentText {
  private bytes: Uint8Array = new Uint8Array(0);
  private value = "";

  /**
   * The string of `buf[start..stop)`: the remembered one when the bytes are equal, else
   * `decode(buf, start, stop)`, which is then remembered.
   */
  get(
    buf: Uint8Array,
    start: number,
    stop: number,
    decode: (buf: Uint8Array, start: number, stop: number) => string,
  ): string {
    const b = this.bytes;
    if (stop - start === b.length) {
      let i = 0;
      while (i < b.length && buf[start + i] === b[i]) i++;
      if (i === b.length) return this.value;
    }
    this.value = decode(buf, start, stop);
    // a copy (a Node.js Buffer's slice() would be a view): read buffers are reused
    this.bytes = new Uint8Array(buf.subarray(start, stop));
    return this.value;
  }
}

/** True when every UTF-16 unit of `s` is ASCII. */
export function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

const utf8 = new TextDecoder("utf-8", { fatal: false });

/**
 * UTF-8 text of `buf[start..stop)`. Short ASCII (guids, subjects, IDs) is built in JS as one
 * flat string, which is cheaper than a call into the runtime for a few dozen bytes (and a
 * `+=` chain would build a rope that a Map lookup or a comparison must flatten again).
 */
export function decodeText(buf: Uint8Array, start: number, stop: number): string {
  if (stop - start < 64) {
    let i = start;
    while (i < stop && (buf[i] as number) < 0x80) i++;
    if (i === stop) return String.fromCharCode.apply(null, buf.subarray(start, stop) as never);
  }
  return utf8.decode(buf.subarray(start, stop));
}
