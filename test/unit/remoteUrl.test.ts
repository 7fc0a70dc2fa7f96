// The pure parts of opening pages remotely and on the network: code-server's /proxy/ →
// /absproxy/ rewrite, joining an app path onto a forwarded base, code-server detection,
// and the QR code of the network URL.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { qrDataUrl, qrSvg } from '../../extension/qr';
import { absproxyUrl, joinPath, looksLikeCodeServer } from '../../extension/remoteUrl';

describe('code-server URLs', () => {
  test('/proxy/PORT/ becomes /absproxy/PORT/, under any base path; other forms are left alone', () => {
    assert.equal(absproxyUrl('http://127.0.0.1:8443/proxy/8000/', 8000), 'http://127.0.0.1:8443/absproxy/8000/');
    assert.equal(absproxyUrl('https://dev.example/ide/proxy/8000/', 8000), 'https://dev.example/ide/absproxy/8000/');
    assert.equal(absproxyUrl('https://dev.example/proxy/8001/', 8000), undefined);
    assert.equal(absproxyUrl('https://8000-x.app.github.dev/', 8000), undefined);
    assert.equal(absproxyUrl('not a url', 8000), undefined);
  });
  test('an app path joins the forwarded base, query kept', () => {
    assert.equal(joinPath('http://h/absproxy/8000/', '/api/items?x=1'), 'http://h/absproxy/8000/api/items?x=1');
    assert.equal(joinPath('http://localhost:9000/', '/'), 'http://localhost:9000/');
    assert.equal(joinPath('http://localhost:9000', 'a'), 'http://localhost:9000/a');
  });
  test('code-server is recognised by what it sets for its children', () => {
    assert.equal(looksLikeCodeServer({ CODE_SERVER_PARENT_PID: '12' }), true);
    assert.equal(looksLikeCodeServer({ VSCODE_PROXY_URI: './proxy/{{port}}/' }), true);
    assert.equal(looksLikeCodeServer({ VSCODE_PROXY_URI: 'https://{{port}}.dev.example' }), false);
    assert.equal(looksLikeCodeServer({}), false);
  });
});

describe('the QR code of the network URL', () => {
  test('is an SVG document, different for another URL, and embeddable as a data: URL', async () => {
    const a = await qrSvg('http://192.168.1.20:8080/');
    const b = await qrSvg('http://192.168.1.21:8080/');
    assert.match(a, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^>]*viewBox="0 0 \d+ \d+"/);
    assert.match(a, /<path[^>]+d="M[^"]+"/);
    assert.notEqual(a, b);
    const data = await qrDataUrl('http://192.168.1.20:8080/');
    assert.equal(Buffer.from(data.replace(/^data:image\/svg\+xml;base64,/, ''), 'base64').toString(), a);
  });
});
