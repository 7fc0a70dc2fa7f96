// A token bucket per route and client address ("20/s": a burst of 20, refilled at 20
// per second), as NGINX's limit_req with a burst. Buckets of idle clients are dropped
// so the map cannot grow without bound.
export class RateLimiter {
  private buckets = new Map<string, { tokens: number; at: number }>();
  private lastSweep = 0;

  constructor(private readonly count: number, private readonly perMs: number) {}

  /** 0 when allowed, else the seconds to wait (for Retry-After). */
  take(client: string, now = Date.now()): number {
    const ratePerMs = this.count / this.perMs;
    let bucket = this.buckets.get(client);
    if (!bucket) {
      bucket = { tokens: this.count, at: now };
      this.buckets.set(client, bucket);
    } else {
      bucket.tokens = Math.min(this.count, bucket.tokens + (now - bucket.at) * ratePerMs);
      bucket.at = now;
    }
    if (now - this.lastSweep > 60000) this.sweep(now);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / ratePerMs / 1000));
  }

  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [client, bucket] of this.buckets) if (now - bucket.at > this.perMs * 2) this.buckets.delete(client);
  }
}
