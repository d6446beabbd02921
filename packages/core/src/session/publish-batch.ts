/** A publish awaiting its PubAck, and the batch that collects many outcomes at once. */

import type { StanError } from "../errors.js";
import type { BatchOutcome } from "./types.js";
/** A publish awaiting its PubAck. Its outcome goes to a promise's resolvers or to a batch. */
export interface PendingPub {
  guid: string;
  subject: string;
  data: Uint8Array;
  resolve: ((guid: string) => void) | undefined;
  reject: ((err: Error) => void) | undefined;
  deadline: number;
  /** Set for a pipelined publish (the caller may ignore it): its rejection is marked handled. */
  acked: Promise<string> | undefined;
  /** The batch this publish belongs to, and its index there. */
  batch: PublishBatch | undefined;
  index: number;
  /** Its place in the pending queue (set by PendingQueue.add). */
  seq: number;
}

/** Collects the outcomes of a batch's publishes; `done` resolves once every one is known. */
export class PublishBatch {
  readonly guids: string[];
  private readonly failures: Array<{ index: number; error: StanError }> = [];
  private remaining: number;
  private resolveDone!: (o: BatchOutcome) => void;
  readonly done = new Promise<BatchOutcome>((resolve) => {
    this.resolveDone = resolve;
  });

  constructor(size: number) {
    this.guids = new Array<string>(size).fill("");
    this.remaining = size;
  }

  settled(index: number, error: Error | undefined): void {
    if (error) this.failures.push({ index, error: error as StanError });
    if (--this.remaining === 0) {
      this.failures.sort((a, b) => a.index - b.index);
      this.resolveDone({ guids: this.guids, failures: this.failures });
    }
  }
}

const noop = () => {};

/** Reports a settled publish to whoever waits for it. */
export function finish(p: PendingPub, error: Error | undefined): void {
  if (p.batch) p.batch.settled(p.index, error);
  else if (error) {
    p.acked?.catch(noop); // a pipelined publish's caller may ignore it: no unhandled rejection
    p.reject?.(error);
  } else p.resolve?.(p.guid);
}
