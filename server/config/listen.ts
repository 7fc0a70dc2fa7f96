// The "listen" value: "host:port", "[::1]:port", ":port", "port" or a port number.
// Returns the parts that were written (a missing host is filled from the default by the
// caller) or a message for CONFIG_BAD_PORT that says what to write.
import type { Parsed } from './units';

export interface ListenParts {
  host?: string;
  port: number;
}

const EXAMPLE = 'e.g. "127.0.0.1:8080" or 8080';

export function isValidPort(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= 65535;
}

function portMessage(port: string | number): string {
  return `port ${port} is out of range; use a port from 1 to 65535, ${EXAMPLE}`;
}

export function parseListen(input: unknown): Parsed<ListenParts> {
  if (typeof input === 'number') {
    return isValidPort(input) ? { value: { port: input } } : { error: portMessage(input) };
  }
  if (typeof input !== 'string') {
    return { error: `"listen" must be "host:port" or a port number, ${EXAMPLE}; got ${JSON.stringify(input)}` };
  }
  const scheme = /^[a-z]+:\/\/(.*?)\/?$/i.exec(input);
  if (scheme) return { error: `"listen" takes an address, not a URL: write "${scheme[1]}"` };
  const m = /^(?:\[([^\]]+)\]:|([^:[\]]*):)?([0-9]+)$/.exec(input);
  if (!m) {
    if (/^[^:]*:?$/.test(input) || /^\[[^\]]+\]$/.test(input)) {
      const host = input.replace(/:$/, '');
      return { error: `"${input}" has no port; write "${host || '127.0.0.1'}:8080" or another port` };
    }
    if ((input.match(/:/g) ?? []).length > 1) {
      return { error: `"${input}" is ambiguous; put an IPv6 address in brackets, e.g. "[::1]:8080"` };
    }
    return { error: `"${input}" is not an address; use "host:port" or a port number, ${EXAMPLE}` };
  }
  const port = Number(m[3]);
  if (!isValidPort(port)) return { error: portMessage(m[3]) };
  const host = m[1] ?? (m[2] || undefined);
  return { value: host === undefined ? { port } : { host, port } };
}
