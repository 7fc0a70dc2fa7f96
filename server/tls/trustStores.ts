// The trust stores `servestack trust` changes, and how it tells whether the local CA is
// trusted. The NSS databases of Chromium (~/.pki/nssdb on Linux) and of every Firefox
// profile are the user's own and change without a password, through NSS's `certutil`
// (Debian's libnss3-tools), as mkcert does it. The system store (what curl, Python and
// most programs read) is changed only when asked (`--system`) and only with the rights:
// otherwise the commands are printed for the user to run.
import os from 'node:os';
import path from 'node:path';
import { execFile, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, unlinkSync } from 'node:fs';
import { ServeStackError } from '../errors';

export interface CaIdentity {
  certFile: string;
  fingerprint: string; // sha-256 hex
}

export interface NssStore {
  kind: 'chromium' | 'firefox';
  /** What the user reads: "Chromium (~/.pki/nssdb)". */
  label: string;
  dir: string;
  exists: boolean;
}

export type StoreOutcome = { store: string; result: 'added' | 'removed' | 'already' | 'absent' | 'skipped' | 'failed'; detail?: string };

export interface TrustStatus {
  trusted: boolean;
  stores: Array<{ label: string; trusted: boolean }>;
}

/** The CA's name in each store: the fingerprint in it, so a new CA never hides behind an old one's entry. */
export function nickname(ca: CaIdentity): string {
  return `ServeStack local CA ${ca.fingerprint.slice(0, 16)}`;
}

export function homeDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.HOME || os.homedir();
}

/** Chromium's database (which may not exist yet, on Linux) and every Firefox profile that has one. */
export function nssStores(home = homeDir()): NssStore[] {
  const stores: NssStore[] = [];
  const shown = (dir: string) => (dir.startsWith(home + path.sep) ? `~${dir.slice(home.length)}` : dir);
  if (process.platform === 'linux') {
    const chromium = path.join(home, '.pki', 'nssdb');
    stores.push({ kind: 'chromium', label: `Chromium and Chrome (${shown(chromium)})`, dir: chromium, exists: existsSync(path.join(chromium, 'cert9.db')) });
    const snap = path.join(home, 'snap', 'chromium', 'current', '.pki', 'nssdb');
    if (existsSync(path.join(snap, 'cert9.db'))) stores.push({ kind: 'chromium', label: `Chromium snap (${shown(snap)})`, dir: snap, exists: true });
  }
  const firefoxRoots = process.platform === 'darwin'
    ? [path.join(home, 'Library', 'Application Support', 'Firefox', 'Profiles')]
    : process.platform === 'win32'
      ? [path.join(process.env.APPDATA || path.join(home, 'AppData', 'Roaming'), 'Mozilla', 'Firefox', 'Profiles')]
      : [path.join(home, '.mozilla', 'firefox'), path.join(home, 'snap', 'firefox', 'common', '.mozilla', 'firefox'), path.join(home, '.var', 'app', 'org.mozilla.firefox', '.mozilla', 'firefox')];
  for (const root of firefoxRoots) {
    let entries: string[];
    try {
      entries = readdirSync(root);
    } catch {
      continue; // no Firefox here
    }
    for (const name of entries.sort()) {
      const dir = path.join(root, name);
      if (existsSync(path.join(dir, 'cert9.db'))) stores.push({ kind: 'firefox', label: `Firefox profile ${name} (${shown(dir)})`, dir, exists: true });
    }
  }
  return stores;
}

function certutil(args: string[]): { ok: boolean; output: string; missing: boolean } {
  const run = spawnSync('certutil', args, { encoding: 'utf8', timeout: 15_000, windowsHide: true });
  const missing = (run.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
  return { ok: run.status === 0, output: `${run.stdout ?? ''}${run.stderr ?? ''}`.trim(), missing };
}

const CERTUTIL_MISSING = 'certutil is not installed: install libnss3-tools (Debian/Ubuntu), nss-tools (Fedora) or nss (Homebrew)';

export function certutilAvailable(): boolean {
  return !certutil(['-H']).missing;
}

export function isTrustedIn(store: NssStore, ca: CaIdentity): boolean {
  if (!store.exists) return false;
  return certutil(['-L', '-d', `sql:${store.dir}`, '-n', nickname(ca)]).ok;
}

/** The same as trustStatus without blocking: the running server asks while it serves. */
export async function trustStatusAsync(ca: CaIdentity, home = homeDir()): Promise<TrustStatus> {
  const listed = (store: NssStore) => new Promise<boolean>((resolve) => {
    if (!store.exists) return resolve(false);
    execFile('certutil', ['-L', '-d', `sql:${store.dir}`, '-n', nickname(ca)], { timeout: 15_000, windowsHide: true }, (error) => resolve(!error));
  });
  const stores = await Promise.all(nssStores(home).map(async (s) => ({ label: s.label, trusted: await listed(s) })));
  const system = systemStore();
  if (system) stores.push({ label: system.label, trusted: existsSync(system.file(ca)) });
  return { trusted: stores.some((s) => s.trusted), stores };
}

export function trustStatus(ca: CaIdentity, home = homeDir()): TrustStatus {
  const stores = certutilAvailable() ? nssStores(home).map((s) => ({ label: s.label, trusted: isTrustedIn(s, ca) })) : [];
  const system = systemStore();
  if (system) stores.push({ label: system.label, trusted: existsSync(system.file(ca)) });
  return { trusted: stores.some((s) => s.trusted), stores };
}

/** Adds the CA to every NSS store; Chromium's database on Linux is made when it does not exist. */
export function addToNssStores(ca: CaIdentity, home = homeDir()): StoreOutcome[] {
  const stores = nssStores(home);
  if (!certutilAvailable()) throw new ServeStackError('TRUST_FAILED', CERTUTIL_MISSING, { hint: `or import ${ca.certFile} in the browser's certificate settings as an authority` });
  return stores.map((store): StoreOutcome => {
    if (!store.exists) {
      if (store.kind !== 'chromium') return { store: store.label, result: 'skipped', detail: 'no database' };
      mkdirSync(store.dir, { recursive: true, mode: 0o700 });
      const made = certutil(['-N', '-d', `sql:${store.dir}`, '--empty-password']);
      if (!made.ok) return { store: store.label, result: 'failed', detail: made.output };
      store.exists = true;
    }
    if (isTrustedIn(store, ca)) return { store: store.label, result: 'already' };
    // C,, : a trusted CA for TLS servers only (not for e-mail or code signing).
    const added = certutil(['-A', '-d', `sql:${store.dir}`, '-t', 'C,,', '-n', nickname(ca), '-i', ca.certFile]);
    return added.ok ? { store: store.label, result: 'added' } : { store: store.label, result: 'failed', detail: added.output };
  });
}

export function removeFromNssStores(ca: CaIdentity, home = homeDir()): StoreOutcome[] {
  const stores = nssStores(home).filter((s) => s.exists);
  if (stores.length && !certutilAvailable()) throw new ServeStackError('TRUST_FAILED', CERTUTIL_MISSING);
  return stores.map((store): StoreOutcome => {
    if (!isTrustedIn(store, ca)) return { store: store.label, result: 'absent' };
    const removed = certutil(['-D', '-d', `sql:${store.dir}`, '-n', nickname(ca)]);
    return removed.ok ? { store: store.label, result: 'removed' } : { store: store.label, result: 'failed', detail: removed.output };
  });
}

// ── the system store ────────────────────────────────────────────────────────

interface SystemStore {
  label: string;
  file(ca: CaIdentity): string;
  /** The commands that add or remove the CA, as a root user would type them. */
  addCommands(ca: CaIdentity): string[][];
  removeCommands(ca: CaIdentity): string[][];
}

/** The Linux system store of this distribution's kind (Debian's update-ca-certificates, Fedora's update-ca-trust); others: none known. */
export function systemStore(): SystemStore | undefined {
  if (process.platform !== 'linux') return undefined;
  const fileName = (ca: CaIdentity) => `servestack-${ca.fingerprint.slice(0, 16)}.crt`;
  if (existsSync('/usr/sbin/update-ca-certificates') || existsSync('/usr/bin/update-ca-certificates')) {
    const file = (ca: CaIdentity) => path.join('/usr/local/share/ca-certificates', fileName(ca));
    return {
      label: 'the system store (/usr/local/share/ca-certificates)',
      file,
      addCommands: (ca) => [['cp', ca.certFile, file(ca)], ['update-ca-certificates']],
      removeCommands: (ca) => [['rm', '-f', file(ca)], ['update-ca-certificates', '--fresh']],
    };
  }
  if (existsSync('/usr/bin/update-ca-trust')) {
    const file = (ca: CaIdentity) => path.join('/etc/pki/ca-trust/source/anchors', fileName(ca));
    return {
      label: 'the system store (/etc/pki/ca-trust/source/anchors)',
      file,
      addCommands: (ca) => [['cp', ca.certFile, file(ca)], ['update-ca-trust', 'extract']],
      removeCommands: (ca) => [['rm', '-f', file(ca)], ['update-ca-trust', 'extract']],
    };
  }
  return undefined;
}

/**
 * Changes the system store when this process has the rights (root); otherwise says what
 * to run. Never asks for a password itself: that stays the user's decision, typed by them.
 */
export function changeSystemStore(ca: CaIdentity, action: 'add' | 'remove'): StoreOutcome & { commands?: string[] } {
  const store = systemStore();
  if (!store) return { store: 'the system store', result: 'skipped', detail: `ServeStack does not know this system's store; add ${ca.certFile} as the system's documentation says` };
  const commands = action === 'add' ? store.addCommands(ca) : store.removeCommands(ca);
  const shown = commands.map((c) => `sudo ${c.map(shellQuote).join(' ')}`);
  const present = existsSync(store.file(ca));
  if (action === 'add' && present) return { store: store.label, result: 'already' };
  if (action === 'remove' && !present) return { store: store.label, result: 'absent' };
  if (process.getuid?.() !== 0) return { store: store.label, result: 'skipped', detail: 'needs root; run:', commands: shown };
  try {
    if (action === 'add') {
      copyFileSync(ca.certFile, store.file(ca));
    } else {
      unlinkSync(store.file(ca));
    }
    const update = commands[1];
    const run = spawnSync(update[0], update.slice(1), { encoding: 'utf8', timeout: 60_000 });
    if (run.status !== 0) return { store: store.label, result: 'failed', detail: `${update.join(' ')}: ${(run.stderr || run.error?.message || '').trim()}` };
  } catch (error) {
    return { store: store.label, result: 'failed', detail: (error as Error).message };
  }
  return { store: store.label, result: action === 'add' ? 'added' : 'removed' };
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
