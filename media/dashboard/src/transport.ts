// How the page talks to the server. In a browser tab: the page's own WebSocket endpoint
// (/dashboard/control, authenticated by the session cookie). In the editor's webview:
// messages to the extension, which relays them over its control connection (the webview
// has no network access under its CSP).
import type { ControlEvent, ControlRequest, ControlResults } from '../../../server/protocol';

export interface Transport {
  request<R extends ControlRequest>(command: R): Promise<ControlResults[R['type']]>;
  onEvent(listener: (event: ControlEvent) => void): void;
  onStatus(listener: (status: 'connecting' | 'live' | 'down', detail?: string) => void): void;
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };

class Base {
  protected nextId = 1;
  protected readonly pending = new Map<number, Pending>();
  protected eventListeners: ((event: ControlEvent) => void)[] = [];
  protected statusListeners: ((status: 'connecting' | 'live' | 'down', detail?: string) => void)[] = [];
  onEvent(listener: (event: ControlEvent) => void): void { this.eventListeners.push(listener); }
  onStatus(listener: (status: 'connecting' | 'live' | 'down', detail?: string) => void): void { this.statusListeners.push(listener); }
  protected status(s: 'connecting' | 'live' | 'down', detail?: string): void { for (const l of this.statusListeners) l(s, detail); }
  protected deliver(event: ControlEvent): void {
    if (event.type === 'reply') {
      const p = this.pending.get(event.id);
      if (!p) return;
      this.pending.delete(event.id);
      if (event.ok) p.resolve(event.result);
      else p.reject(new Error(`${event.error.message}${event.error.hint ? ` (${event.error.hint})` : ''} [${event.error.code}]`));
      return;
    }
    for (const l of this.eventListeners) l(event);
  }
  protected failAll(why: string): void {
    for (const p of this.pending.values()) p.reject(new Error(why));
    this.pending.clear();
  }
}

export class WebSocketTransport extends Base implements Transport {
  private ws?: WebSocket;
  private retryMs = 500;

  constructor(private readonly url: string) {
    super();
    this.connect();
  }

  private connect(): void {
    this.status('connecting');
    const ws = new WebSocket(this.url, ['servestack.v1']);
    this.ws = ws;
    ws.onopen = () => { this.retryMs = 500; this.status('live'); };
    ws.onmessage = (m) => {
      try { this.deliver(JSON.parse(String(m.data)) as ControlEvent); } catch { /* not ours: ignore */ }
    };
    ws.onclose = (e) => {
      this.failAll('the connection closed');
      this.status('down', e.code === 1001 ? 'the server stopped' : 'the connection was lost; retrying');
      // A restarted server has a new session: reconnecting then fails until the page is opened again.
      setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 10_000);
    };
  }

  request<R extends ControlRequest>(command: R): Promise<ControlResults[R['type']]> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return reject(new Error('not connected'));
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.ws.send(JSON.stringify({ ...command, id }));
    });
  }
}

interface VsCodeApi { postMessage(message: unknown): void }
declare function acquireVsCodeApi(): VsCodeApi;

/** Messages: page → extension { type: 'command', id, command } and { type: 'ready' }; extension → page { type: 'event', event } (replies are events too). */
export class WebviewTransport extends Base implements Transport {
  private readonly vscode = acquireVsCodeApi();

  constructor() {
    super();
    window.addEventListener('message', (e: MessageEvent) => {
      const data = e.data as { type?: string; event?: ControlEvent; status?: 'live' | 'down'; detail?: string };
      if (data?.type === 'event' && data.event) this.deliver(data.event);
      else if (data?.type === 'status' && data.status) {
        if (data.status === 'down') this.failAll(data.detail ?? 'the server stopped');
        this.status(data.status, data.detail);
      }
    });
    this.status('connecting');
    this.vscode.postMessage({ type: 'ready' });
  }

  request<R extends ControlRequest>(command: R): Promise<ControlResults[R['type']]> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.vscode.postMessage({ type: 'command', id, command });
    });
  }
}
