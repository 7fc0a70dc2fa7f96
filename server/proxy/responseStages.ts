// The path an upstream's answer takes to the client, as a chain of stages: each one may
// look at (and edit) the head before it is sent, and may wrap the body. Forward builds
// the chain once per answer: the stages in ForwardOptions.stages first (the dev loop's
// script injection goes there), then compression, then the response buffer. So a stage
// sees the body as the app wrote it, and compression sees what the stages made of it.
import type { IncomingHttpHeaders } from 'node:http';

/** Where a body goes next: the following stage, or the response buffer at the end. */
export interface BodySink {
  write(chunk: Buffer): void;
  /** The upstream finished: flush what is held, then end the next sink. */
  end(): void;
  /** The answer cannot be completed (the upstream broke off, or the client left): drop everything, cut. */
  abort(): void;
}

export interface StageContext {
  readonly method: string;
  readonly url: string;
  readonly requestHeaders: IncomingHttpHeaders;
  status: number;
  /** The head the client will get, hop-by-hop fields already removed. A stage that changes the body's length removes Content-Length. */
  headers: [string, string][];
  /** Hold the upstream while a stage catches up (backpressure); each hold() is matched by one release(). */
  hold(): void;
  release(): void;
}

/** Looks at the head; returns how to wrap the body, or undefined to leave it alone. */
export type ResponseStage = (context: StageContext) => ((next: BodySink) => BodySink) | undefined;

/** The value of a header (case-insensitive), the first when repeated. */
export function headerValue(headers: [string, string][], name: string): string | undefined {
  for (let i = 0; i < headers.length; i++) {
    const key = headers[i][0];
    // The length first: a lower-cased copy of every other name was most of this function's cost.
    if (key.length === name.length && (key === name || key.toLowerCase() === name)) return headers[i][1];
  }
  return undefined;
}

/** Sets one header, replacing every field of that name. */
export function setHeader(headers: [string, string][], name: string, value: string): [string, string][] {
  return [...removeHeader(headers, name), [name, value]];
}

export function removeHeader(headers: [string, string][], name: string): [string, string][] {
  const lower = name.toLowerCase();
  return headers.filter(([key]) => key.toLowerCase() !== lower);
}
