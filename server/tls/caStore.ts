// ServeStack's local certificate authority (mkcert and Caddy do the same): made once per
// user, kept in a per-user folder outside every workspace (so no certificate or key is
// ever committed, exported or served), its key readable by the user alone. Browsers are
// told to trust it by `servestack trust`; the certificates the server presents are
// issued from it (leafCert.ts) and never written to disk.
import os from 'node:os';
import path from 'node:path';
import { X509Certificate, createPrivateKey, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, linkSync, mkdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { ServeStackError } from '../errors';
import { generateKeyPair, importPrivateKeyPem, privateKeyPem, randomSerial, x509, type CryptoKey, type X509 } from './x509';

export const CA_CERT_FILE = 'rootCA.pem';
export const CA_KEY_FILE = 'rootCA-key.pem';
const CA_YEARS = 10;

export interface LocalCa {
  dir: string;
  certFile: string;
  certPem: string;
  cert: X509.X509Certificate;
  key: CryptoKey;
  /** SHA-256 of the DER, hex: names the CA in trust stores, so a new CA never takes an old one's place. */
  fingerprint: string;
}

/**
 * Where the CA lives: SERVESTACK_CA_DIR when set (tests, shared machines), else the OS's
 * per-user data folder: $XDG_DATA_HOME or ~/.local/share on Linux, Application Support on
 * macOS, %LOCALAPPDATA% on Windows.
 */
export function caDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SERVESTACK_CA_DIR) return path.resolve(env.SERVESTACK_CA_DIR);
  const home = env.HOME || os.homedir();
  if (process.platform === 'win32') return path.join(env.LOCALAPPDATA || path.join(home, 'AppData', 'Local'), 'ServeStack', 'ca');
  if (process.platform === 'darwin') return path.join(home, 'Library', 'Application Support', 'ServeStack', 'ca');
  return path.join(env.XDG_DATA_HOME || path.join(home, '.local', 'share'), 'servestack', 'ca');
}

/** The CA's certificate file when one was made already (trust verbs need no new CA to untrust). */
export function existingCaCertFile(dir = caDir()): string | undefined {
  const file = path.join(dir, CA_CERT_FILE);
  return existsSync(file) ? file : undefined;
}

/** Loads the user's CA, making it on first use. Two servers starting at once make one CA between them. */
export async function loadOrCreateCa(dir = caDir()): Promise<LocalCa> {
  const certFile = path.join(dir, CA_CERT_FILE);
  const keyFile = path.join(dir, CA_KEY_FILE);
  if (!existsSync(keyFile)) await createCa(dir, certFile, keyFile);
  return loadCa(dir, certFile, keyFile);
}

async function createCa(dir: string, certFile: string, keyFile: string): Promise<void> {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw caError(dir, `its folder cannot be made: ${(error as Error).message}`, error);
  }
  const keys = await generateKeyPair();
  const user = safeUserName();
  const name = `CN=ServeStack local CA ${user}@${os.hostname()}, O=ServeStack local development CA, OU=${user}`;
  const now = Date.now();
  const cert = await x509().X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name,
    notBefore: new Date(now - 60 * 60 * 1000),
    notAfter: new Date(now + CA_YEARS * 365 * 24 * 60 * 60 * 1000),
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [
      new (x509().BasicConstraintsExtension)(true, 0, true),
      new (x509().KeyUsagesExtension)(x509().KeyUsageFlags.keyCertSign | x509().KeyUsageFlags.cRLSign, true),
      await x509().SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  // Written beside the final names, then linked: link() fails if another process won the
  // race, and then its CA is the one (the loser's files are removed).
  const tag = `${process.pid}.${randomBytes(4).toString('hex')}`;
  const tmpKey = `${keyFile}.${tag}`;
  const tmpCert = `${certFile}.${tag}`;
  try {
    writeFileSync(tmpKey, await privateKeyPem(keys.privateKey), { mode: 0o600, flag: 'wx' });
    chmodSync(tmpKey, 0o600); // a umask cannot widen it, but an ACL-less FS may ignore mode at open
    writeFileSync(tmpCert, cert.toString('pem') + '\n', { mode: 0o644, flag: 'wx' });
    try {
      linkSync(tmpKey, keyFile);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return waitForCert(dir, certFile);
      throw error;
    }
    renameSync(tmpCert, certFile);
  } catch (error) {
    throw caError(dir, `it could not be written: ${(error as Error).message}`, error);
  } finally {
    for (const file of [tmpKey, tmpCert]) if (existsSync(file)) unlinkSync(file);
  }
}

/** Another process linked its key first; its certificate follows within moments. */
async function waitForCert(dir: string, certFile: string): Promise<void> {
  for (let i = 0; i < 100 && !existsSync(certFile); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  if (!existsSync(certFile)) throw caError(dir, `${CA_KEY_FILE} exists but ${CA_CERT_FILE} does not`);
}

async function loadCa(dir: string, certFile: string, keyFile: string): Promise<LocalCa> {
  let certPem: string;
  let keyPem: string;
  try {
    certPem = readFileSync(certFile, 'utf8');
    keyPem = readFileSync(keyFile, 'utf8');
  } catch (error) {
    throw caError(dir, `it cannot be read: ${(error as Error).message}`, error);
  }
  if (process.platform !== 'win32' && (statSync(keyFile).mode & 0o077) !== 0) {
    // Someone widened it: narrow it again rather than refuse (it is still the user's own key).
    chmodSync(keyFile, 0o600);
  }
  let nodeCert: X509Certificate;
  try {
    nodeCert = new X509Certificate(certPem);
    if (!nodeCert.checkPrivateKey(createPrivateKey(keyPem))) throw new Error(`${CA_KEY_FILE} does not belong to ${CA_CERT_FILE}`);
  } catch (error) {
    throw caError(dir, `it is damaged: ${(error as Error).message}`, error);
  }
  if (Date.parse(nodeCert.validTo) <= Date.now()) throw caError(dir, `it expired on ${new Date(nodeCert.validTo).toISOString()}`);
  const key = await importPrivateKeyPem(keyPem);
  return {
    dir,
    certFile,
    certPem,
    cert: new (x509().X509Certificate)(certPem),
    key,
    fingerprint: nodeCert.fingerprint256.replace(/:/g, '').toLowerCase(),
  };
}

function caError(dir: string, what: string, cause?: unknown): ServeStackError {
  return new ServeStackError('TLS_CA_FAILED', `the local CA in ${dir} ${what}`, {
    hint: 'fix the folder\'s permissions, or remove it (run `servestack untrust` first) so a new CA is made; SERVESTACK_CA_DIR moves it',
    cause,
  });
}

function safeUserName(): string {
  try {
    return os.userInfo().username.replace(/[,=+<>#;"\\]/g, '_') || 'user';
  } catch {
    return process.env.USER || 'user'; // no passwd entry (some containers)
  }
}
