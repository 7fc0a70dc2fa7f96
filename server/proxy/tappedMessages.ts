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
// restated one by one, and these only pass their arguments on.
type Method = (this: TappedResponse, ...args: unknown[]) => unknown;
const base = http.ServerResponse.prototype as unknown as Record<'writeHead' | 'write' | 'end', Method>;
const tapped: Record<'writeHead' | 'write' | 'end', Method> = {
  // Node's own implicit head (a write or end without writeHead) comes through here too.
  writeHead(...args) {
    this.tap?.responseHead();
    return base.writeHead.apply(this, args);
  },
  write(...args) {
    if (this.tap !== undefined && this.req.method !== 'HEAD') this.tap.responseData(args[0], args[1]);
    return base.write.apply(this, args);
  },
  end(...args) {
    if (this.tap !== undefined && this.req.method !== 'HEAD') this.tap.responseData(args[0], args[1]);
    return base.end.apply(this, args);
  },
};
Object.assign(TappedResponse.prototype, tapped);

/** The createServer options that make the listener use them. */
export const tappedMessageClasses = { IncomingMessage: TappedRequest, ServerResponse: TappedResponse } as const;
