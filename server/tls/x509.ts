// The one door to @peculiar/x509: it needs reflect-metadata loaded before it, and Node's
// WebCrypto as its provider. Every module that issues certificates takes it from here.
// Loaded on first use: the two cost 15 MiB of RSS, and a server without HTTPS (most of
// them) never issues a certificate.
import { webcrypto } from 'node:crypto';
import type * as X509 from '@peculiar/x509';

export type { X509 };
let loaded: typeof X509 | undefined;

export function x509(): typeof X509 {
  if (!loaded) {
    require('reflect-metadata');
    const lib = require('@peculiar/x509') as typeof X509;
    lib.cryptoProvider.set(webcrypto as unknown as Parameters<typeof lib.cryptoProvider.set>[0]);
    loaded = lib;
  }
  return loaded;
}
export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;
export const subtle = webcrypto.subtle;

/** ECDSA P-256 with SHA-256: what browsers and mkcert's newer CAs use; small and fast to make. */
export const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export async function generateKeyPair(): Promise<CryptoKeyPair> {
  return (await subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
}

export async function privateKeyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await subtle.exportKey('pkcs8', key));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/.{1,64}/g, '$&\n')}-----END PRIVATE KEY-----\n`;
}

export async function importPrivateKeyPem(pem: string): Promise<CryptoKey> {
  const body = pem.replace(/-----(BEGIN|END) PRIVATE KEY-----/g, '').replace(/\s+/g, '');
  return subtle.importKey('pkcs8', Buffer.from(body, 'base64'), KEY_ALGORITHM, true, ['sign']);
}

/** 16 random bytes, the top bit clear so the serial stays a positive INTEGER (RFC 5280 §4.1.2.2). */
export function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] &= 0x7f;
  bytes[0] |= 0x01; // no leading zero byte to strip
  return Buffer.from(bytes).toString('hex');
}
