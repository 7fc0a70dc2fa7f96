// Whether this machine trusts the local CA yet, kept current while the server runs: the
// Workers view says "HTTPS not trusted yet" until `servestack trust` (or the editor's
// Trust Local HTTPS) has run. The NSS databases are watched (certutil rewrites them), with
// a slow re-check for stores that do not exist yet when the server starts.
import path from 'node:path';
import { watch, type FSWatcher } from 'node:fs';
import { homeDir, nssStores, trustStatusAsync, type CaIdentity, type TrustStatus } from './trustStores';

const RECHECK_MS = 30_000;
const DEBOUNCE_MS = 300;

export class TrustWatch {
  status: TrustStatus | undefined;
  private readonly watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly ca: CaIdentity, private readonly onChange: (status: TrustStatus) => void, private readonly home = homeDir()) {}

  async start(): Promise<void> {
    await this.check();
    const dirs = new Set(nssStores(this.home).map((s) => s.dir));
    dirs.add(path.join(this.home, '.pki')); // where Chromium's database appears when `trust` makes it
    for (const dir of dirs) {
      try {
        const watcher = watch(dir, { persistent: false }, () => this.soon());
        watcher.on('error', () => watcher.close());
        this.watchers.push(watcher);
      } catch {
        // Not there (yet): the slow re-check covers it.
      }
    }
    this.timer = setInterval(() => void this.check(), RECHECK_MS);
    this.timer.unref();
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.debounce);
    for (const w of this.watchers) w.close();
  }

  private soon(): void {
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.check(), DEBOUNCE_MS);
    this.debounce.unref();
  }

  private async check(): Promise<void> {
    const status = await trustStatusAsync(this.ca, this.home);
    if (this.closed) return;
    const changed = this.status?.trusted !== status.trusted;
    this.status = status;
    if (changed) this.onChange(status);
  }
}
