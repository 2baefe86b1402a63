import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { applyEdits, offsetAt } from '../edits';

const pos = (line: number, character: number) => ({ line, character });
const edit = (l1: number, c1: number, l2: number, c2: number, newText: string) => ({ range: { start: pos(l1, c1), end: pos(l2, c2) }, newText });

test('offsetAt clamps past line ends and past the last line', () => {
  const text = 'ab\r\ncd\nef';
  const cases: Array<[number, number, number]> = [
    [0, 0, 0], [0, 2, 2], [0, 9, 2], [1, 0, 4], [1, 2, 6], [2, 1, 8], [2, 5, 9], [7, 0, 9],
  ];
  for (const [line, ch, expected] of cases) {
    assert.equal(offsetAt(text, pos(line, ch)), expected, `${line}:${ch}`);
  }
});

test('offsetAt counts UTF-16 code units (LSP default encoding)', () => {
  assert.equal(offsetAt('x😀y', pos(0, 3)), 3); // the emoji is two code units
});

test('applyEdits: single, multi-line, several in any order', () => {
  const text = 'def foo():\n    return foo\n';
  assert.equal(applyEdits(text, [edit(0, 4, 0, 7, 'bar')]), 'def bar():\n    return foo\n');
  assert.equal(applyEdits(text, [edit(0, 0, 1, 14, 'pass')]), 'pass\n');
  assert.equal(applyEdits(text, [edit(1, 11, 1, 14, 'bar'), edit(0, 4, 0, 7, 'bar')]), 'def bar():\n    return bar\n');
  assert.equal(applyEdits('', [edit(0, 0, 0, 0, 'x')]), 'x');
});

test('applyEdits refuses overlapping edits', () => {
  assert.throws(() => applyEdits('abcdef', [edit(0, 0, 0, 3, 'x'), edit(0, 2, 0, 4, 'y')]), /overlapping/);
});
