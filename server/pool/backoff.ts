// When to try again after a worker could not load the app, or crashed too often.
// Exponential, capped: an app with a typo costs a few quiet retries a minute, not a
// crash loop that floods the log.
export class Backoff {
  private failures = 0;
  constructor(private readonly firstMs = 1000, private readonly maxMs = 30000) {}

  /** Records a failure and returns how long to wait before the next try. */
  fail(): number {
    this.failures++;
    return Math.min(this.maxMs, this.firstMs * 2 ** (this.failures - 1));
  }
  reset(): void {
    this.failures = 0;
  }
  get count(): number {
    return this.failures;
  }
}

/** Crashes within a sliding window: more than `limit` means back off instead of respawning at once. */
export class CrashBudget {
  private times: number[] = [];
  constructor(private readonly limit = 5, private readonly windowMs = 10000) {}
  record(now = Date.now()): boolean {
    this.times = this.times.filter((t) => now - t < this.windowMs);
    this.times.push(now);
    return this.times.length > this.limit;
  }
}
