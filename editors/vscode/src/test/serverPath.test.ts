import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { findServer, Probe } from '../serverPath';

function probe(over: Partial<Probe>, executables: string[]): Probe {
  return {
    configuredPath: '',
    python: '',
    env: {},
    workspaceFolders: [],
    platform: 'linux',
    isExecutable: (f) => executables.includes(f),
    ...over,
  };
}

test('a configured path wins, and a wrong one is an error that names it', () => {
  assert.deepEqual(findServer(probe({ configuredPath: '/opt/d' }, ['/opt/d', '/usr/bin/dcopilot'])), { command: '/opt/d', args: [] });
  const missing = findServer(probe({ configuredPath: '/nope' }, []));
  assert.ok('error' in missing && missing.error.includes('/nope'));
});

test('search order: $VIRTUAL_ENV, workspace .venv then venv, PATH', () => {
  const all = ['/env/bin/dcopilot', '/ws/.venv/bin/dcopilot', '/ws/venv/bin/dcopilot', '/usr/bin/dcopilot'];
  const p = { env: { VIRTUAL_ENV: '/env', PATH: '/usr/local/bin:/usr/bin' }, workspaceFolders: ['/ws'] };
  for (let i = 0; i < all.length; i++) {
    assert.deepEqual(findServer(probe(p, all.slice(i))), { command: all[i], args: [] });
  }
});

test('a Python interpreter: its sibling entry point, else python -m dcopilot.copilot', () => {
  assert.deepEqual(findServer(probe({ python: '/py/bin/python3' }, ['/py/bin/python3', '/py/bin/dcopilot'])), { command: '/py/bin/dcopilot', args: [] });
  assert.deepEqual(findServer(probe({ python: '/py/bin/python3' }, ['/py/bin/python3'])), { command: '/py/bin/python3', args: ['-m', 'dcopilot.copilot'] });
});

test('nothing found says what to install or set', () => {
  const r = findServer(probe({ env: { PATH: '/usr/bin' } }, []));
  assert.ok('error' in r && r.error.includes('dcopilot.server.path'));
});

test('Windows: Scripts directory and .exe', () => {
  const r = findServer(probe({ platform: 'win32', env: { VIRTUAL_ENV: 'C:/env' } }, ['C:/env/Scripts/dcopilot.exe']));
  assert.ok(!('error' in r) && r.command.endsWith('dcopilot.exe'));
});
