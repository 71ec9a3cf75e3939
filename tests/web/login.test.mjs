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
