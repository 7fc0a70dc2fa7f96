// What the listener needs for "tls": a certificate and key now, and (for "auto") a new
// pair before each expires. Built before the server listens, so a bad file or a CA that
// cannot be made stops the start with its own error, and nothing is half-served.
import type { TlsConfig } from '../config/types';
import { caDir, loadOrCreateCa, type LocalCa } from './caStore';
import { issueLeaf, LeafRenewer, leafNames, LEAF_LIFETIME_MS } from './leafCert';
import { loadUserCertificate } from './userFiles';

export interface CertificatePair {
  cert: string;
  key: string;
}

export interface ServerTls {
  readonly mode: 'auto' | 'files';
  readonly ca?: LocalCa;
  current(): CertificatePair & { notAfter: Date };
  /** Called with each renewed pair ("auto" only). */
  onRenewed(listener: (pair: CertificatePair) => void): void;
  stop(): void;
}

export interface ServerTlsOptions {
  /** Host names the server is reached by, beyond localhost and the loopback addresses. */
  hostNames?: readonly string[];
  /** The CA folder; default caDir() (SERVESTACK_CA_DIR or the per-user folder). */
  caDir?: string;
  leafLifetimeMs?: number;
  onRenewError?: (error: Error) => void;
  onRenewed?: (notAfter: Date) => void;
}

export async function prepareServerTls(tls: TlsConfig, options: ServerTlsOptions = {}): Promise<ServerTls> {
  if (tls !== 'auto') {
    const user = loadUserCertificate(tls.cert, tls.key);
    return {
      mode: 'files',
      current: () => ({ cert: user.certPem, key: user.keyPem, notAfter: user.notAfter }),
      onRenewed: () => undefined,
      stop: () => undefined,
    };
  }
  const ca = await loadOrCreateCa(options.caDir ?? caDir());
  const names = leafNames(options.hostNames);
  const lifetime = options.leafLifetimeMs ?? LEAF_LIFETIME_MS;
  const first = await issueLeaf(ca, names, lifetime);
  const listeners: Array<(pair: CertificatePair) => void> = [];
  const renewer = new LeafRenewer(ca, names, first, (leaf) => {
    options.onRenewed?.(leaf.notAfter);
    for (const listener of listeners) listener({ cert: leaf.certPem, key: leaf.keyPem });
  }, (error) => options.onRenewError?.(error), lifetime);
  return {
    mode: 'auto',
    ca,
    current: () => ({ cert: renewer.leaf.certPem, key: renewer.leaf.keyPem, notAfter: renewer.leaf.notAfter }),
    onRenewed: (listener) => void listeners.push(listener),
    stop: () => renewer.stop(),
  };
}
