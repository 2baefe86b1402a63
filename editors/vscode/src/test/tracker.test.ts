import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { DID_ACCEPT, DID_REJECT, DID_SHOW } from '../protocol';
import { Tracker } from '../tracker';

const U = 'file:///a.py';
const offer = (id: string, start = 10, text = 'urn a + b', typed = 0) => ({ id, uri: U, start, text, typed });

test('shown once per suggestion', () => {
  const t = new Tracker();
  assert.deepEqual(t.offer(offer('s1')), [{ method: DID_SHOW, params: { id: 's1' } }]);
  assert.deepEqual(t.offer(offer('s1')), []);
});

test('a full accept (insert of the rest) is not a reject; VS Code runs the command', () => {
  const t = new Tracker();
  t.offer(offer('s1'));
  assert.deepEqual(t.change(U, 10, 0, 'urn a + b'), []);
  assert.deepEqual(t.cursor(U, 19), []);
  assert.deepEqual(t.end(), []);
});

test('a full accept that rewrites from the item start (after typing into it) is not a reject', () => {
  const t = new Tracker();
  t.offer(offer('s1'));
  t.change(U, 10, 0, 'u');
  assert.deepEqual(t.change(U, 10, 1, 'urn a + b'), []);
  assert.deepEqual(t.end(), []);
});

test('a full accept that absorbs an auto-closed bracket', () => {
  const t = new Tracker();
  t.offer(offer('s1', 4, 'a, b)'));
  assert.deepEqual(t.change(U, 4, 1, 'a, b)'), []);
  assert.deepEqual(t.end(), []);
});

test('word and line accepts report the accepted length so far', () => {
  const t = new Tracker();
  t.offer(offer('s1', 0, 'lo(name):\n    print(name)'));
  assert.deepEqual(t.change(U, 0, 0, 'lo'), [{ method: DID_ACCEPT, params: { id: 's1', acceptedLength: 2 } }]);
  assert.deepEqual(t.cursor(U, 2), []);
  assert.deepEqual(t.change(U, 2, 0, '(name):'), [{ method: DID_ACCEPT, params: { id: 's1', acceptedLength: 9 } }]);
  // Leaving after a partial accept is not a reject.
  assert.deepEqual(t.cursor(U, 0), []);
});

test('typing one matching character is typing, not an accept', () => {
  const t = new Tracker();
  t.offer(offer('s1'));
  assert.deepEqual(t.change(U, 10, 0, 'u'), []);
  assert.deepEqual(t.cursor(U, 11), []);
});

test('divergent typing, moving away, or Escape rejects', () => {
  for (const leave of [
    (t: Tracker) => t.change(U, 10, 0, 'x'),
    (t: Tracker) => t.cursor(U, 3),
    (t: Tracker) => t.cursor('file:///other.py', 10),
    (t: Tracker) => t.end(),
    (t: Tracker) => t.change(U, 0, 1, ''),
  ]) {
    const t = new Tracker();
    t.offer(offer('s1'));
    assert.deepEqual(leave(t), [{ method: DID_REJECT, params: { id: 's1' } }]);
    assert.deepEqual(t.end(), [], 'reported once');
  }
});

test('a new suggestion elsewhere rejects the old one; one at its end supersedes it silently', () => {
  const t = new Tracker();
  t.offer(offer('s1'));
  assert.deepEqual(t.offer(offer('s2', 30)), [
    { method: DID_REJECT, params: { id: 's1' } },
    { method: DID_SHOW, params: { id: 's2' } },
  ]);
  t.change(U, 30, 0, 'u');
  assert.deepEqual(t.offer(offer('s3', 31, 'rn a + b')), [{ method: DID_SHOW, params: { id: 's3' } }]);
});

test('changes in other documents are ignored', () => {
  const t = new Tracker();
  t.offer(offer('s1'));
  assert.deepEqual(t.change('file:///b.py', 0, 0, 'zzz'), []);
  assert.deepEqual(t.change(U, 10, 0, 'urn a + b'), []);
});
