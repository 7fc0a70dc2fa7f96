// "tls": {"cert", "key"}: the user's own certificate and key, checked before the server
// listens, so a wrong file is an error that names it and says what is wrong, rather than
// a TLS handshake that fails in the browser with no word on the server's side.
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ServeStackError } from '../errors';

export interface UserCertificate {
  certPem: string;
  keyPem: string;
  notAfter: Date;
  subject: string;
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/;

export function loadUserCertificate(certFile: string, keyFile: string, now = Date.now()): UserCertificate {
  const certPem = readOrFail(certFile, 'certificate');
  const keyPem = readOrFail(keyFile, 'key');
  const block = CERT_BLOCK.exec(certPem);
  if (!block) {
    const what = /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(certPem) ? 'holds a private key, not a certificate' : 'is not a PEM certificate (no "-----BEGIN CERTIFICATE-----" block)';
    throw new ServeStackError('TLS_CERT_INVALID', `the certificate file ${certFile} ${what}`, {
      hint: 'point "tls.cert" at the PEM certificate (the full chain, leaf first); convert DER with `openssl x509 -inform der -in cert.der -out cert.pem`',
    });
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(block[0]);
  } catch (error) {
    throw new ServeStackError('TLS_CERT_INVALID', `the certificate file ${certFile} holds a damaged certificate: ${(error as Error).message}`, {
      hint: 'export the certificate again from where it was issued', cause: error,
    });
  }
  const key = parseKey(keyFile, keyPem);
  if (!cert.checkPrivateKey(key)) {
    throw new ServeStackError('TLS_KEY_MISMATCH', `the key file ${keyFile} does not belong to the certificate ${certFile} (${oneLine(cert.subject)})`, {
      hint: 'point "tls.key" at the key the certificate was issued for',
    });
  }
  const notBefore = Date.parse(cert.validFrom);
  const notAfter = Date.parse(cert.validTo);
  if (notAfter <= now) {
    throw new ServeStackError('TLS_CERT_EXPIRED', `the certificate file ${certFile} expired on ${new Date(notAfter).toISOString()}`, {
      hint: 'renew the certificate, or use "tls": "auto" (its certificates renew themselves)',
    });
  }
  if (notBefore > now) {
    throw new ServeStackError('TLS_CERT_EXPIRED', `the certificate file ${certFile} is not valid until ${new Date(notBefore).toISOString()}`, {
      hint: 'check this machine\'s clock, or use a certificate that is valid now',
    });
  }
  return { certPem, keyPem, notAfter: new Date(notAfter), subject: oneLine(cert.subject) };
}

function readOrFail(file: string, what: 'certificate' | 'key'): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'cannot be read (permission denied)' : code === 'EISDIR' ? 'is a folder' : `cannot be read: ${(error as Error).message}`;
    throw new ServeStackError('TLS_FILE_UNREADABLE', `the ${what} file ${file} ${why}`, {
      hint: `fix "tls.${what === 'certificate' ? 'cert' : 'key'}" in servestack.json (relative paths are relative to the folder), or use "tls": "auto"`,
      cause: error,
    });
  }
}

function parseKey(file: string, pem: string): KeyObject {
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(pem)) {
    throw new ServeStackError('TLS_KEY_INVALID', `the key file ${file} is encrypted; ServeStack needs an unencrypted key`, {
      hint: 'write a decrypted copy with `openssl pkey -in key.pem -out key-plain.pem` and point "tls.key" at it (keep it out of version control)',
    });
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
    const what = CERT_BLOCK.test(pem) ? 'holds a certificate, not a private key' : 'is not a PEM private key (no "-----BEGIN PRIVATE KEY-----" block)';
    throw new ServeStackError('TLS_KEY_INVALID', `the key file ${file} ${what}`, { hint: 'point "tls.key" at the PEM private key of the certificate' });
  }
  try {
    return createPrivateKey(pem);
  } catch (error) {
    throw new ServeStackError('TLS_KEY_INVALID', `the key file ${file} holds a damaged private key: ${(error as Error).message}`, {
      hint: 'point "tls.key" at the PEM private key of the certificate', cause: error,
    });
  }
}

function oneLine(name: string): string {
  return name.split('\n').filter(Boolean).join(', ');
}
