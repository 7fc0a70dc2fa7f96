// Wall-clock times for per-request records without a Date.now() per request: the
// request path already reads performance.now() for its durations, and the epoch time of
// such a reading is that plus an offset. The offset is taken again from Date.now() once
// a second of monotonic time, so a wall-clock step (NTP, a suspended laptop) shows in the
// times within a second, as it would in NGINX's cached $time_local.
const RESYNC_MS = 1000;
let offset = Date.now() - performance.now();
let syncedAt = performance.now();

/** The epoch milliseconds of a performance.now() reading taken recently. */
export function wallTimeOf(perfMs: number): number {
  if (perfMs - syncedAt >= RESYNC_MS || perfMs < syncedAt - RESYNC_MS) {
    const perfNow = performance.now();
    offset = Date.now() - perfNow;
    syncedAt = perfNow;
  }
  return perfMs + offset;
}
