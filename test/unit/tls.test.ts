// The pure parts of HTTPS: which names a local certificate covers, and how "httpRedirect"
// is read and planned (a restart applies it, as it does "listen" and "tls").
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { parseConfigText } from '../../server/config';
import { planConfigChange, runningAfter } from '../../server/config/apply';
import { leafNames } from '../../server/tls/leafCert';
import { nickname } from '../../server/tls/trustStores';

const dir = mkdtempSync(path.join(os.tmpdir(), 'servestack-unit-tls-'));
writeFileSync(path.join(dir, 'index.html'), 'hi\n');
after(() => rmSync(dir, { recursive: true, force: true }));

function parse(fields: Record<string, unknown>) {
  return parseConfigText(JSON.stringify({ routes: [{ path: '/', static: '.' }], ...fields }), path.join(dir, 'servestack.json'), dir);
}

describe('local certificate names', () => {
  it('always localhost, 127.0.0.1 and ::1; adds a named listen host once; never a wildcard address', () => {
    assert.deepEqual(leafNames([]), ['localhost', '127.0.0.1', '::1']);
    assert.deepEqual(leafNames(['127.0.0.1']), ['localhost', '127.0.0.1', '::1']);
    assert.deepEqual(leafNames(['0.0.0.0', '::', '[::1]']), ['localhost', '127.0.0.1', '::1']);
    assert.deepEqual(leafNames(['MyApp.Test', '192.168.1.20']), ['localhost', '127.0.0.1', '::1', 'myapp.test', '192.168.1.20']);
  });

  it('names the CA in trust stores by its fingerprint, so a new CA never hides behind an old entry', () => {
    assert.equal(nickname({ certFile: 'x', fingerprint: 'ab'.repeat(32) }), `ServeStack local CA ${'ab'.repeat(8)}`);
  });
});

describe('"httpRedirect"', () => {
  it('takes a port (the listen host) or host:port', () => {
    assert.deepEqual(parse({ listen: '127.0.0.1:8443', tls: 'auto', httpRedirect: 8080 }).config?.httpRedirect, { host: '127.0.0.1', port: 8080 });
    assert.deepEqual(parse({ listen: 8443, tls: 'auto', httpRedirect: '[::1]:8080' }).config?.httpRedirect, { host: '::1', port: 8080 });
  });

  it('is an error without "tls", on the same port as listen, or not an address; each on "httpRedirect"', () => {
    const cases: Array<[Record<string, unknown>, string, RegExp]> = [
      [{ httpRedirect: 8080 }, 'CONFIG_SCHEMA', /serves no HTTPS: add "tls": "auto"/],
      [{ listen: 8443, tls: 'auto', httpRedirect: 8443 }, 'CONFIG_BAD_PORT', /need a port each/],
      [{ listen: 8443, tls: 'auto', httpRedirect: 'http://localhost:80' }, 'CONFIG_BAD_PORT', /takes an address, not a URL/],
    ];
    for (const [fields, code, message] of cases) {
      const result = parse(fields);
      const found = result.diagnostics.find((d) => d.code === code);
      assert.ok(found, `${JSON.stringify(fields)}: ${JSON.stringify(result.diagnostics)}`);
      assert.match(found.message, message);
      assert.equal(result.config, undefined);
    }
  });

  it('a change needs a restart, and the running server keeps the redirect it has', () => {
    const before = parse({ listen: 8443, tls: 'auto', httpRedirect: 8080 }).config!;
    const next = parse({ listen: 8443, tls: 'auto', httpRedirect: 8081 }).config!;
    const plan = planConfigChange(before, next, { boundPort: 8443 });
    assert.equal(plan.unchanged, false);
    assert.deepEqual(plan.restartNeeded.map((r) => [r.field, r.running, r.wanted]), [['httpRedirect', '127.0.0.1:8080', '127.0.0.1:8081']]);
    assert.deepEqual(runningAfter(before, next).httpRedirect, { host: '127.0.0.1', port: 8080 });
    assert.equal(planConfigChange(before, parse({ listen: 8443, tls: 'auto', httpRedirect: 8080 }).config!, { boundPort: 8443 }).unchanged, true);
  });
});
