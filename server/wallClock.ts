// Wall-clock times for per-request records without a Date.now() per request: the
// request path already reads performance.now() for its durations, and the epoch time of
// such a reading is that plus an offset. The offset is taken again from Date.now() once
// a second of monotonic time, so a wall-clock step (NTP, a suspended laptop) shows in the
// times within a second, as it would in NGINX's cached $time_local.
const RESYNC_MS = 1000;
let offset = 0;
let syncedAt = -Infinity; // the first reading syncs

/** Date.now() is whole milliseconds, rounded down: half a millisecond centres its error. */
function syncOffset(perfNow: number): void {
  offset = Date.now() + 0.5 - perfNow;
  syncedAt = perfNow;
}

/** The epoch milliseconds of a performance.now() reading taken recently. */
export function wallTimeOf(perfMs: number): number {
  if (perfMs - syncedAt >= RESYNC_MS || perfMs < syncedAt - RESYNC_MS) {
    syncOffset(performance.now());
  }
  return perfMs + offset;
}
