// A minimal Debug Adapter Protocol client for tests: Content-Length framed JSON over TCP,
// requests matched to responses by seq, events kept so a test can wait for one.
import net from 'node:net';

export interface DapMessage {
  seq: number;
  type: 'request' | 'response' | 'event';
  command?: string;
  event?: string;
  request_seq?: number;
  success?: boolean;
  message?: string;
  body?: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export class DapClient {
  private seq = 0;
  private buffer = Buffer.alloc(0);
  private readonly pending = new Map<number, (m: DapMessage) => void>();
  readonly events: DapMessage[] = [];
  private readonly eventWaiters = new Set<() => void>();
  private closed = false;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.eventWaiters) w();
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number, host = '127.0.0.1'): Promise<DapClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, host, () => resolve(new DapClient(socket)));
      socket.once('error', reject);
    });
  }

  /** Sends a request; the returned promise is its response (rejected when it failed). */
  request(command: string, args?: unknown): Promise<DapMessage> {
    const seq = ++this.seq;
    const text = JSON.stringify({ seq, type: 'request', command, arguments: args });
    this.socket.write(`Content-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
    return new Promise((resolve, reject) => {
      this.pending.set(seq, (m) => (m.success ? resolve(m) : reject(new Error(`${command} failed: ${m.message ?? JSON.stringify(m.body)}`))));
    });
  }

  /** The first event named `name` after index `from` of `events` (default: any seen so far). */
  waitForEvent(name: string, timeoutMs = 20000, from = 0): Promise<DapMessage> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.events.slice(from).find((e) => e.event === name);
        if (found) {
          done();
          resolve(found);
        } else if (this.closed) {
          done();
          reject(new Error(`the debug adapter closed the connection before a '${name}' event`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no '${name}' event within ${timeoutMs} ms; events: ${this.events.map((e) => e.event).join(', ')}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.eventWaiters.delete(check);
      };
      this.eventWaiters.add(check);
      check();
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const headerEnd = this.buffer.indexOf('\r\n\r\n');
      if (headerEnd < 0) return;
      const match = /Content-Length: *(\d+)/i.exec(this.buffer.subarray(0, headerEnd).toString('ascii'));
      if (!match) throw new Error(`a DAP message without Content-Length: ${this.buffer.subarray(0, headerEnd)}`);
      const length = Number(match[1]);
      const start = headerEnd + 4;
      if (this.buffer.length < start + length) return;
      const message = JSON.parse(this.buffer.subarray(start, start + length).toString('utf8')) as DapMessage;
      this.buffer = this.buffer.subarray(start + length);
      if (message.type === 'response') {
        this.pending.get(message.request_seq!)?.(message);
        this.pending.delete(message.request_seq!);
      } else if (message.type === 'event') {
        this.events.push(message);
        for (const w of this.eventWaiters) w();
      }
    }
  }
}
