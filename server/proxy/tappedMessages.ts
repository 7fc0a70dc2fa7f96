// Request and response classes the front's listener makes instead of Node's own, so an
// observer (the request inspector) can see the bodies pass without patching each object.
// Patching `emit`/`write`/`end` on every request gave each object its own shape, and
// Node's stream internals then ran megamorphic: ~70 µs a request, measured A/B. Methods
// on a subclass keep one shape for all of them, and cost one branch when nothing taps.
import http from 'node:http';

/** What sees a request's bodies as they pass (none of it may change them). */
export interface MessageTap {
  requestData(chunk: Buffer): void;
  responseHead(): void;
  responseData(chunk: unknown, encoding: unknown): void;
}

export class TappedRequest extends http.IncomingMessage {
  tap: MessageTap | undefined = undefined;

  // The parser pushes every body chunk here, whoever reads the body and however.
  override push(chunk: unknown, encoding?: BufferEncoding): boolean {
    if (this.tap !== undefined && Buffer.isBuffer(chunk)) this.tap.requestData(chunk);
    return super.push(chunk, encoding);
  }
}

export class TappedResponse<Request extends http.IncomingMessage = http.IncomingMessage> extends http.ServerResponse<Request> {
  tap: MessageTap | undefined = undefined;
}

// On the prototype rather than as overriding methods: ServerResponse's overloads cannot be
// restated one by one, and these only pass their arguments on. Three named parameters,
// not a rest array and apply(): Node reads a missing argument as undefined either way,
// and a rest array was two allocations and a slow call on every response.
type Method = (this: TappedResponse, a?: unknown, b?: unknown, c?: unknown) => unknown;
const base = http.ServerResponse.prototype as unknown as Record<'writeHead' | 'write' | 'end', Method>;
const baseWriteHead = base.writeHead;
const baseWrite = base.write;
const baseEnd = base.end;
const tapped: Record<'writeHead' | 'write' | 'end', Method> = {
  // Node's own implicit head (a write or end without writeHead) comes through here too.
  writeHead(a, b, c) {
    this.tap?.responseHead();
    return baseWriteHead.call(this, a, b, c);
  },
  write(a, b, c) {
    if (this.tap !== undefined && this.req.method !== 'HEAD') this.tap.responseData(a, b);
    return baseWrite.call(this, a, b, c);
  },
  end(a, b, c) {
    if (this.tap !== undefined && this.req.method !== 'HEAD') this.tap.responseData(a, b);
    return baseEnd.call(this, a, b, c);
  },
};
Object.assign(TappedResponse.prototype, tapped);

/** The createServer options that make the listener use them. */
export const tappedMessageClasses = { IncomingMessage: TappedRequest, ServerResponse: TappedResponse } as const;
