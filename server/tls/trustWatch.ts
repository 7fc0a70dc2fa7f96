// Whether this machine trusts the local CA yet, kept current while the server runs: the
// Workers view says "HTTPS not trusted yet" until `servestack trust` (or the editor's
// Trust Local HTTPS) has run. The NSS databases are watched (certutil rewrites them), with
// a slow re-check for stores that do not exist yet when the server starts.
import path from 'node:path';
import { existsSync, watch, type FSWatcher } from 'node:fs';
import { homeDir, nssStores, trustStatusAsync, type CaIdentity, type TrustStatus } from './trustStores';

const RECHECK_MS = 30_000;
const DEBOUNCE_MS = 300;

export class TrustWatch {
  status: TrustStatus | undefined;
  private readonly watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private closed = false;
  private armedFor = '';

  constructor(private readonly ca: CaIdentity, private readonly onChange: (status: TrustStatus) => void, private readonly home = homeDir()) {}

  async start(): Promise<void> {
    await this.check();
    this.timer = setInterval(() => void this.check(), RECHECK_MS);
    this.timer.unref();
  }

  /**
   * Watches each database folder there is, and where Chromium's will appear: ~/.pki, or
   * the home folder itself (for a ".pki" entry only) until ~/.pki exists. Re-armed after
   * each check, as `trust` may have just made a folder.
   */
  private arm(): void {
    const wanted = new Map<string, string | undefined>();
    for (const store of nssStores(this.home)) if (existsSync(store.dir)) wanted.set(store.dir, undefined);
    const pki = path.join(this.home, '.pki');
    if (existsSync(pki)) wanted.set(pki, undefined);
    else wanted.set(this.home, '.pki');
    const key = [...wanted].map(([d, f]) => `${d}:${f ?? ''}`).join('|');
    if (key === this.armedFor) return;
    this.armedFor = key;
    for (const w of this.watchers.splice(0)) w.close();
    for (const [dir, only] of wanted) {
      try {
        const watcher = watch(dir, { persistent: false }, (_event, name) => {
          if (only === undefined || String(name) === only) this.soon();
        });
        watcher.on('error', () => watcher.close());
        this.watchers.push(watcher);
      } catch {
        // Gone meanwhile: the slow re-check covers it.
      }
    }
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
    this.arm();
    const changed = this.status?.trusted !== status.trusted;
    this.status = status;
    if (changed) this.onChange(status);
  }
}
