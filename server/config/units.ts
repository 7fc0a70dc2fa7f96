// Sizes ("10m"), durations ("30s") and rates ("20/s") as written in servestack.json.
// Each parser returns the value or a message that says what to write instead; the
// loader turns that message into a CONFIG_BAD_UNIT diagnostic at the value. The schema's
// patterns for these (definitions.size/duration/rate) accept the same strings, so the
// editor's own validation agrees with these parsers (a unit test checks both).

export type Parsed<T> = { value: T; error?: undefined } | { value?: undefined; error: string };

export interface Rate {
  count: number;
  perMs: number;
}

const SIZE_FACTORS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };
const DURATION_FACTORS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const RATE_PERIODS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000 };

const SIZE_HELP = 'use a number of bytes or a number with k, m or g, e.g. "10m"';
const DURATION_HELP = 'use a number of seconds or a number with ms, s, m or h, e.g. "30s"';
const RATE_HELP = 'use a count per s, m or h, e.g. "20/s" or "100/m"';

/** How a value appears in a message: strings in single quotes, the rest as JSON. */
function shown(value: unknown): string {
  return typeof value === 'string' ? `'${value}'` : JSON.stringify(value) ?? String(value);
}

/** Bytes from a number of bytes or a string such as "512k", "10m", "1g" (powers of 1024, as NGINX). */
export function parseSize(input: unknown): Parsed<number> {
  if (typeof input === 'number') {
    if (Number.isSafeInteger(input) && input >= 0) return { value: input };
    return { error: `${shown(input)} is not a size; use a whole number of bytes ≥ 0, or a number with k, m or g, e.g. "10m"` };
  }
  if (typeof input !== 'string') return { error: `${shown(input)} is not a size; ${SIZE_HELP}` };
  const m = /^([0-9]+(?:\.[0-9]+)?)([kmg]?)$/i.exec(input);
  if (!m) return { error: `${shown(input)} is not a size; ${SIZE_HELP}` };
  const bytes = Math.round(Number(m[1]) * SIZE_FACTORS[m[2].toLowerCase()]);
  if (!Number.isSafeInteger(bytes)) return { error: `${shown(input)} is too large a size; ${SIZE_HELP}` };
  return { value: bytes };
}

/** Milliseconds from a number of seconds or a string such as "500ms", "30s", "2m", "1h". */
export function parseDuration(input: unknown): Parsed<number> {
  if (typeof input === 'number') {
    if (Number.isFinite(input) && input >= 0) return { value: Math.round(input * 1000) };
    return { error: `${shown(input)} is not a duration; use a number of seconds ≥ 0, or a number with ms, s, m or h, e.g. "30s"` };
  }
  if (typeof input !== 'string') return { error: `${shown(input)} is not a duration; ${DURATION_HELP}` };
  // A bare number in a string is most likely seconds with the unit forgotten: say so.
  if (/^[0-9]+(\.[0-9]+)?$/.test(input)) {
    return { error: `${shown(input)} has no unit; write "${input}s" for seconds, or the number ${input} without quotes` };
  }
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)$/.exec(input);
  if (!m) return { error: `${shown(input)} is not a duration; ${DURATION_HELP}` };
  return { value: Math.round(Number(m[1]) * DURATION_FACTORS[m[2]]) };
}

/** A request rate such as "20/s", "100/m", "1000/h" (NGINX's "20r/s" is accepted too). */
export function parseRate(input: unknown): Parsed<Rate> {
  if (typeof input !== 'string') return { error: `${shown(input)} is not a rate; ${RATE_HELP}` };
  const m = /^([0-9]+)r?\/(s|m|h)$/.exec(input);
  if (!m) return { error: `${shown(input)} is not a rate; ${RATE_HELP}` };
  const count = Number(m[1]);
  if (count < 1 || !Number.isSafeInteger(count)) return { error: `${shown(input)} allows no request; the count must be at least 1, e.g. "20/s"` };
  return { value: { count, perMs: RATE_PERIODS[m[2]] } };
}
