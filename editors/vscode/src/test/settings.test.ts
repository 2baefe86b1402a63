import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { isEnabled, liveSettings, serverArgs, withEntry } from '../settings';

const lookup = (values: Record<string, unknown>) => (key: string) => values[key];

test('serverArgs passes only the startup settings that are set, as flags', () => {
  assert.deepEqual(serverArgs(lookup({})), ['serve']);
  assert.deepEqual(
    serverArgs(lookup({ 'model.path': '/m', 'model.device': 'cuda:1', 'model.dtype': '', 'server.logLevel': 'debug', 'server.traceText': true })),
    ['serve', '--model', '/m', '--device', 'cuda:1', '--log-level', 'debug', '--trace'],
  );
  assert.deepEqual(serverArgs(lookup({ 'server.configFile': '/c.toml', 'model.quantize': 'nf4' })), ['serve', '--config', '/c.toml', '--quantize', 'nf4']);
});

test('liveSettings sends enable plus only the live keys the user set', () => {
  assert.deepEqual(liveSettings(lookup({}), true), { enable: true });
  assert.deepEqual(
    liveSettings(lookup({ maxTokens: 32, multiline: 'never', speculative: false, completionItems: 'always', 'model.path': '/ignored' }), false),
    { enable: false, maxTokens: 32, multiline: 'never', speculative: false, completionItems: 'always' },
  );
});

test('isEnabled: the language entry, else "*", else on', () => {
  const cases: Array<[Record<string, boolean> | undefined, string, boolean]> = [
    [undefined, 'python', true],
    [{}, 'python', true],
    [{ '*': false }, 'python', false],
    [{ '*': false, python: true }, 'python', true],
    [{ '*': true, markdown: false }, 'markdown', false],
    [{ '*': true, markdown: false }, 'rust', true],
  ];
  for (const [map, lang, expected] of cases) {
    assert.equal(isEnabled(map, lang), expected, `${JSON.stringify(map)} ${lang}`);
  }
});

test('withEntry copies and sets one entry', () => {
  const before = { '*': true };
  assert.deepEqual(withEntry(before, 'go', false), { '*': true, go: false });
  assert.deepEqual(before, { '*': true });
  assert.deepEqual(withEntry(undefined, '*', false), { '*': false });
});
