// One more address for the same HTTP server ("Serve on my network"): a plain TCP listener
// whose connections are handed to the server as if it had accepted them, so the strict
// front, the limits and the routes are the very same ones (and a TLS server wraps them the
// same way). A Node server listens on one address only; this is the documented way in.
import net from 'node:net';
import type { Server } from 'node:net';

export class ExtraListener {
  private readonly listener: net.Server;

  constructor(private readonly target: Server) {
    // The server tracks these connections as its own (closeAllConnections ends them too).
    this.listener = net.createServer((socket) => this.target.emit('connection', socket));
  }

  /** Resolves with the bound port; rejects with the listen error (EADDRINUSE, EADDRNOTAVAIL…). */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.listener.once('error', reject);
      this.listener.listen(port, host, () => {
        this.listener.off('error', reject);
        resolve((this.listener.address() as net.AddressInfo).port);
      });
    });
  }

  /** Stop accepting; connections already handed over are the server's to close. */
  close(): void {
    this.listener.close();
  }
}
