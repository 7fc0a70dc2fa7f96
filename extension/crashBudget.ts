// The crash budget, as language clients keep one: a server that crashes is offered a
// restart, but after this many crashes within the window it is not restarted any more
// (the user fixes the cause, then serves again). Pure: plain Node tests cover it.

/** This many unexpected exits within the window use up the budget. */
export const CRASH_BUDGET = { crashes: 5, windowMs: 3 * 60_000 } as const;

/** Adds a crash at `now` to a folder's history: the crashes within the window, and whether they use up the budget. */
export function recordCrash(history: readonly number[], now: number): { recent: number[]; exhausted: boolean } {
  const recent = [...history.filter((t) => now - t < CRASH_BUDGET.windowMs), now];
  return { recent, exhausted: recent.length >= CRASH_BUDGET.crashes };
}
