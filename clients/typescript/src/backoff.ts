/**
 * Back-off with jitter for calls that failed for want of an answer: 0.1 s doubling to 5 s,
 * each pause drawn between half and all of the current step, so that many workers that lost
 * the same server do not come back in step.
 */

export class Backoff {
  private step: number;

  constructor(
    private readonly firstMs = 100,
    private readonly maxMs = 5_000,
  ) {
    this.step = firstMs;
  }

  /** The pause before the next try; each call doubles the step up to the cap. */
  next(): number {
    const pause = this.step / 2 + Math.random() * (this.step / 2);
    this.step = Math.min(this.step * 2, this.maxMs);
    return pause;
  }

  /** After a success: the next failure starts from the first step again. */
  reset(): void {
    this.step = this.firstMs;
  }
}
