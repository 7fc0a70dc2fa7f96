import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRouter } from '../../server/proxy/router';
import type { RouteConfig } from '../../server/config/types';

let index = 0;
const pool = (path: string, name = 'web'): RouteConfig => ({ kind: 'pool', path, pool: name, index: index++ });
const stat = (path: string): RouteConfig => ({ kind: 'static', path, root: '/srv' + path, index: index++ });

// [request path, expected route path or undefined, expected rest, expected redirect]
type Case = [string, string | undefined, string?, string?];

function check(routes: RouteConfig[], cases: Case[]): void {
  const router = createRouter(routes);
  for (const [pathname, routePath, rest, redirect] of cases) {
    const m = router.match(pathname);
    assert.equal(m?.route.path, routePath, `route for ${pathname}`);
    if (routePath === undefined) continue;
    assert.equal(m?.rest, rest, `rest for ${pathname}`);
    assert.equal(m?.redirect, redirect, `redirect for ${pathname}`);
  }
}

test('the longest matching prefix wins whatever the config order', () => {
  const routes = [pool('/'), stat('/static/'), pool('/api/', 'api'), stat('/static/big/')];
  check(routes, [
    ['/', '/', ''],
    ['/index.html', '/', 'index.html'],
    ['/static/x.css', '/static/', 'x.css'],
    ['/static/', '/static/', ''],
    ['/static/big/a.bin', '/static/big/', 'a.bin'],
    ['/static/bigger', '/static/', 'bigger'],
    ['/api/items', '/api/', 'items'],
    ['/apix', '/', 'apix'],
  ]);
  // Reversing the config changes nothing.
  check([...routes].reverse(), [['/static/big/a.bin', '/static/big/', 'a.bin'], ['/api/items', '/api/', 'items']]);
});

test('a prefix without a trailing slash matches as a plain string, like NGINX', () => {
  check([pool('/'), pool('/api', 'api')], [
    ['/api', '/api', ''],
    ['/api/x', '/api', '/x'],
    ['/apix', '/api', 'x'],
    ['/ap', '/', 'ap'],
  ]);
});

test('a request for a slash route without its slash is redirected to the slash form', () => {
  check([pool('/'), stat('/static/'), pool('/api/', 'api')], [
    ['/static', '/static/', '', '/static/'],
    ['/api', '/api/', '', '/api/'],
    ['/stat', '/', 'stat'],
    ['/static/', '/static/', ''],
  ]);
});

test('the redirect applies even when no "/" route exists', () => {
  check([stat('/static/')], [
    ['/static', '/static/', '', '/static/'],
    ['/other', undefined],
  ]);
});

test('an exact route without a slash wins over the redirect', () => {
  check([pool('/'), pool('/docs', 'a'), stat('/docs/')], [
    ['/docs', '/docs', ''],
    ['/docs/', '/docs/', ''],
    ['/docs/x', '/docs/', 'x'],
    ['/docsx', '/docs', 'x'],
  ]);
});

test('nested slash routes redirect at each level', () => {
  check([pool('/'), stat('/a/'), stat('/a/b/')], [
    ['/a', '/a/', '', '/a/'],
    ['/a/b', '/a/b/', '', '/a/b/'],
    ['/a/bc', '/a/', 'bc'],
  ]);
});

test('no route matches when nothing is a prefix', () => {
  check([pool('/api/'), stat('/static/')], [
    ['/', undefined],
    ['/x', undefined],
    ['*', undefined],
  ]);
  check([], [['/', undefined]]);
});

test('matching is case-sensitive and on the raw encoded path', () => {
  check([pool('/'), stat('/static/')], [
    ['/Static/x.css', '/', 'Static/x.css'],
    ['/%73tatic/x.css', '/', '%73tatic/x.css'],
    ['/static/a%20b.txt', '/static/', 'a%20b.txt'],
  ]);
});

test('of two routes with one path, the first defined wins', () => {
  const first = pool('/api/', 'first');
  const second = pool('/api/', 'second');
  const router = createRouter([pool('/'), first, second]);
  assert.equal(router.match('/api/x')?.route, first);
  assert.equal(router.ordered.length, 2);
});
