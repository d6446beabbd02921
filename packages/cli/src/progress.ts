/**
 * Progress output of long-running commands (`stan migrate`): a bar redrawn in place on a
 * terminal, plain lines at every 10% (and at least every 10 s) elsewhere, so that logs and
 * scripts that watch stderr see where the work is.
 */

import type { OutputStream } from "./io.js";

/** How progress is shown: a bar redrawn in place, periodic lines, or nothing. */
export type ProgressMode = "bar" | "lines" | "off";

/** Chooses the mode: nothing with `quiet`, a bar on a terminal or with `force`, else lines. */
export function progressMode(
  out: OutputStream,
  flags: { quiet?: boolean; force?: boolean },
): ProgressMode {
  if (flags.quiet) return "off";
  return flags.force || out.isTTY === true ? "bar" : "lines";
}

const commas = (n: number): string => Math.round(n).toLocaleString("en-US");

/** Options of {@link ProgressReporter}. */
export interface ProgressOptions {
  /** Where it is drawn (stderr). */
  out: OutputStream;
  mode: ProgressMode;
  /** Prefix of each plain line, e.g. `stan migrate`. */
  label: string;
  /** Units done when the work is complete. */
  total: number;
  /** Units already done when this run started (a resumed migration); the rate counts from there. */
  start?: number;
  /** Unit name in the plural, e.g. `messages`. @default "messages" */
  unit?: string;
}

/**
 * Draws the progress of `done` out of `total` units: on a terminal a bar redrawn at most every
 * 100 ms (`[######......]  52%  52,000/100,000 messages  31,000/s`), elsewhere a line
 * `<label>: 52,000/100,000 messages (52%), 31,000/s` each time a further 10% is done and at
 * least every 10 s.
 */
export class ProgressReporter {
  private readonly began = performance.now();
  private readonly start: number;
  private readonly unit: string;
  private lastDraw = 0;
  private lastStep: number;
  private drawnDone = -1;
  private done: number;

  constructor(private readonly opts: ProgressOptions) {
    this.start = opts.start ?? 0;
    this.done = this.start;
    this.unit = opts.unit ?? "messages";
    this.lastStep = this.step(this.start);
  }

  /** Records that `done` units are complete and redraws when it is time. */
  update(done: number): void {
    this.done = done;
    if (this.opts.mode === "off") return;
    const now = performance.now();
    if (this.opts.mode === "bar") {
      if (now - this.lastDraw >= 100) this.drawBar(now);
      return;
    }
    const step = this.step(done);
    if (step > this.lastStep || now - this.lastDraw >= 10_000) {
      this.lastStep = step;
      this.drawLine(now);
    }
  }

  /** Draws the final state (and ends the bar's line). */
  finish(): void {
    const now = performance.now();
    if (this.opts.mode === "bar") {
      this.drawBar(now);
      this.opts.out.write("\n");
    } else if (this.opts.mode === "lines" && this.drawnDone !== this.done) {
      this.drawLine(now);
    }
  }

  /** Whole tenths done. */
  private step(done: number): number {
    return this.opts.total <= 0 ? 10 : Math.floor((done / this.opts.total) * 10);
  }

  private pct(): number {
    return this.opts.total <= 0 ? 100 : Math.floor((this.done / this.opts.total) * 100);
  }

  private rate(now: number): string {
    const seconds = (now - this.began) / 1000;
    return seconds > 0 ? `${commas((this.done - this.start) / seconds)}/s` : "-";
  }

  private drawBar(now: number): void {
    this.lastDraw = now;
    this.drawnDone = this.done;
    const width = 30;
    const fraction = this.opts.total <= 0 ? 1 : Math.min(1, this.done / this.opts.total);
    const filled = Math.floor(fraction * width);
    this.opts.out.write(
      `\r[${"#".repeat(filled)}${".".repeat(width - filled)}] ${String(this.pct()).padStart(3)}%  ${commas(this.done)}/${commas(this.opts.total)} ${this.unit}  ${this.rate(now)}`,
    );
  }

  private drawLine(now: number): void {
    this.lastDraw = now;
    this.drawnDone = this.done;
    this.opts.out.write(
      `${this.opts.label}: ${commas(this.done)}/${commas(this.opts.total)} ${this.unit} (${this.pct()}%), ${this.rate(now)}\n`,
    );
  }
}
