// The certificate the server presents under "tls": "auto": issued by the local CA at
// start, for localhost, 127.0.0.1, ::1 and the names the server is reached by, kept in
// memory only, short-lived (a stolen one is soon worthless), and renewed by itself at two
// thirds of its life while the server runs, without dropping a connection.
import { isIP } from 'node:net';
import type { LocalCa } from './caStore';
import { generateKeyPair, privateKeyPem, randomSerial, x509 } from './x509';

export const LEAF_LIFETIME_MS = 14 * 24 * 60 * 60 * 1000;
/** Clock skew between the server and a browser (a VM, a phone on the LAN) must not make a fresh certificate "not yet valid". */
const BACKDATE_MS = 60 * 60 * 1000;
/** setTimeout's ceiling (about 24.8 days): a longer wait is taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface LeafCertificate {
  certPem: string; // the leaf, then the CA (the chain a client needs beside its trusted root)
  keyPem: string;
  notAfter: Date;
  serial: string;
  names: string[];
}

/** The names every local certificate covers, plus the host names and addresses given. */
export function leafNames(extra: readonly string[] = []): string[] {
  const names = ['localhost', '127.0.0.1', '::1'];
  for (const raw of extra) {
    const name = raw.replace(/^\[|\]$/g, '').toLowerCase();
    // A wildcard listen address is not a name a browser uses.
    if (!name || name === '0.0.0.0' || name === '::' || names.includes(name)) continue;
    names.push(name);
  }
  return names;
}

export async function issueLeaf(ca: LocalCa, names: readonly string[], lifetimeMs = LEAF_LIFETIME_MS): Promise<LeafCertificate> {
  const keys = await generateKeyPair();
  const now = Date.now();
  const notAfter = new Date(now + lifetimeMs);
  const serial = randomSerial();
  const dnsName = names.find((n) => isIP(n) === 0) ?? 'localhost';
  const cert = await x509().X509CertificateGenerator.create({
    serialNumber: serial,
    subject: `CN=${dnsName}, O=ServeStack development certificate`,
    issuer: ca.cert.subject,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter,
    publicKey: keys.publicKey,
    signingKey: ca.key,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [
      new (x509().BasicConstraintsExtension)(false, undefined, true),
      new (x509().KeyUsagesExtension)(x509().KeyUsageFlags.digitalSignature, true),
      new (x509().ExtendedKeyUsageExtension)([x509().ExtendedKeyUsage.serverAuth]),
      new (x509().SubjectAlternativeNameExtension)(names.map((n) => ({ type: isIP(n) ? 'ip' as const : 'dns' as const, value: n }))),
      await x509().SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509().AuthorityKeyIdentifierExtension.create(ca.cert),
    ],
  });
  return {
    certPem: `${cert.toString('pem')}\n${ca.certPem.trim()}\n`,
    keyPem: await privateKeyPem(keys.privateKey),
    notAfter,
    serial,
    names: [...names],
  };
}

/**
 * Keeps a leaf fresh: `onRenewed` gets each new one (the server swaps its secure context).
 * A renewal that fails is retried in a minute; the old certificate serves meanwhile.
 */
export class LeafRenewer {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly ca: LocalCa,
    private readonly names: readonly string[],
    private current: LeafCertificate,
    private readonly onRenewed: (leaf: LeafCertificate) => void,
    private readonly onError: (error: Error) => void,
    private readonly lifetimeMs = LEAF_LIFETIME_MS,
  ) {
    this.schedule();
  }

  get leaf(): LeafCertificate {
    return this.current;
  }

  /** Issues a new leaf now (the timer does this at two thirds of the life). */
  async renew(): Promise<LeafCertificate> {
    const leaf = await issueLeaf(this.ca, this.names, this.lifetimeMs);
    if (this.stopped) return leaf;
    this.current = leaf;
    this.onRenewed(leaf);
    this.schedule();
    return leaf;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(delayMs?: number): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    const renewAt = this.current.notAfter.getTime() - this.lifetimeMs / 3;
    const wait = delayMs ?? Math.max(0, renewAt - Date.now());
    this.timer = setTimeout(() => {
      if (wait > MAX_TIMER_MS - 1 && delayMs === undefined && Date.now() < renewAt) return this.schedule();
      this.renew().catch((error: Error) => {
        this.onError(error);
        this.schedule(60_000);
      });
    }, Math.min(wait, MAX_TIMER_MS));
    this.timer.unref();
  }
}
