// A byte-bounded LRU map for static file entries. A Map keeps insertion order, so moving
// a hit to the end and evicting from the front is LRU at the cost of one delete+set.

export interface Sized {
  /** Bytes this entry holds (bodies plus a fixed overhead for headers and strings). */
  readonly bytes: number;
}

export class ByteLru<V extends Sized> {
  private readonly map = new Map<string, V>();
  private total = 0;
  hits = 0;
  misses = 0;

  constructor(private readonly maxBytes: number) {}

  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    // Move to the newest end (a one-entry map needs no move).
    if (this.map.size > 1) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  set(key: string, v: V): void {
    if (v.bytes > this.maxBytes) return;
    this.delete(key);
    this.map.set(key, v);
    this.total += v.bytes;
    for (const [k, old] of this.map) {
      if (this.total <= this.maxBytes) break;
      this.map.delete(k);
      this.total -= old.bytes;
    }
  }

  /** An entry already held grew by `delta` bytes (its `bytes` already counts them): evict to fit. */
  grew(key: string, v: V, delta: number): void {
    if (this.map.get(key) !== v) return;
    this.total += delta;
    if (v.bytes > this.maxBytes) return this.delete(key, v);
    for (const [k, old] of this.map) {
      if (this.total <= this.maxBytes) break;
      if (old === v) continue;
      this.map.delete(k);
      this.total -= old.bytes;
    }
  }

  /** Deletes `key`, only if it still maps to `expected` when given (a refill may have won). */
  delete(key: string, expected?: V): void {
    const old = this.map.get(key);
    if (old === undefined || (expected !== undefined && old !== expected)) return;
    this.map.delete(key);
    this.total -= old.bytes;
  }

  clear(): void {
    this.map.clear();
    this.total = 0;
  }

  get size(): number {
    return this.map.size;
  }

  get usedBytes(): number {
    return this.total;
  }
}
