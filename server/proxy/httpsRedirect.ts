// "httpRedirect": a plain-HTTP listener whose every answer is a 308 to the same path and
// query on HTTPS (308, not 301: a POST stays a POST with its body). The host is the one
// the client asked for, when it is a valid host, with the HTTPS port; anything else gets
// the listener's own host, so a forged Host can never point the redirect elsewhere than
// a name this client already used.
import http from 'node:http';
import type { Logger } from '../log';
import { accessLine } from './accessLog';
import { clientAddress } from './headers';
import { isValidHost } from './requestChecks';

export class HttpsRedirect {
  private readonly server: http.Server;
  port = 0;

  constructor(private readonly httpsPort: () => number, private readonly fallbackHost: string, private readonly logger: Logger) {
    this.server = http.createServer({ requireHostHeader: false, keepAliveTimeout: 5000 }, (req, res) => this.onRequest(req, res));
    this.server.on('clientError', (_error, socket) => socket.destroy());
  }

  async listen(host: string, port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.port = (this.server.address() as { port: number }).port;
  }

  /** The HTTPS address a request for `hostHeader` and `url` is sent to. */
  location(hostHeader: string | undefined, url: string): string {
    const named = hostHeader && isValidHost(hostHeader) ? hostHeader.replace(/:\d*$/, '') : undefined;
    const fallback = this.fallbackHost === '0.0.0.0' || this.fallbackHost === '::' ? 'localhost' : this.fallbackHost;
    const host = named ?? (fallback.includes(':') ? `[${fallback}]` : fallback);
    const port = this.httpsPort();
    const path = url.startsWith('/') ? url : '/';
    return `https://${host}${port === 443 ? '' : `:${port}`}${path}`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const started = performance.now();
    const location = this.location(req.headers.host, req.url ?? '/');
    const body = req.method === 'HEAD' ? '' : `This page is served over HTTPS: ${location}\n`;
    res.writeHead(308, { Location: location, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
    res.end(body);
    // The request body (if any) is not read: the client sends it again to the new address.
    req.resume();
    res.on('finish', () => {
      this.logger.log('info', 'access', accessLine(req, { remoteAddr: clientAddress(req), status: 308, bytes: Buffer.byteLength(body), startedAt: started, endedAt: performance.now() }));
    });
  }
}
