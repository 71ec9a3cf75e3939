import assert from 'node:assert/strict';
import { test } from 'node:test';

import { safeNext } from '../../web/login.js';

test('next is a path on this gateway, never another site', () => {
  assert.equal(safeNext('?next=%2F%23camera%3Dcam'), '/#camera=cam');
  assert.equal(safeNext('?next=/api/cameras'), '/api/cameras');
  assert.equal(safeNext(''), '/');
  for (const evil of ['//evil.test/', 'https://evil.test/', '/\\evil.test', 'javascript:alert(1)']) {
    assert.equal(safeNext(`?next=${encodeURIComponent(evil)}`), '/');
  }
});

test('the fragment kept through the redirect is not lost', () => {
  assert.equal(safeNext('?next=/', '#camera=cam'), '/#camera=cam');
  assert.equal(safeNext('?next=%2F%23camera%3Da', '#camera=b'), '/#camera=a');
});

test('no open redirect through characters a URL parser drops or rewrites', () => {
  // Browsers strip tab, CR and LF from URLs: "/\t/evil" becomes "//evil", another site.
  for (const evil of ['/\t/evil.example/', '/\n/evil.example/', '/\r/evil.example/',
    '/\\/evil.example/', '/%09/evil.example/', '\t//evil.example/', '/\u0000/x',
    ' //evil.example/', '/\t\t/evil.example', 'http:/evil.example']) {
    const path = safeNext(`?next=${encodeURIComponent(evil)}`);
    assert.ok(path.startsWith('/') && !path.startsWith('//'), `${JSON.stringify(evil)} -> ${path}`);
    assert.equal(new URL(path, 'http://gw.test').origin, 'http://gw.test');
  }
  // The attack as sent: /login?next=/%09/evil.example/ (the %09 decodes to a tab).
  assert.equal(safeNext('?next=/%09/evil.example/'), '/');
  assert.equal(safeNext('?next=/%0a/evil.example/'), '/');
  assert.equal(safeNext('?next=/%0d/evil.example/'), '/');
  assert.equal(safeNext('?next=/cameras/a%20b?x=1'), '/cameras/a%20b?x=1');
});
