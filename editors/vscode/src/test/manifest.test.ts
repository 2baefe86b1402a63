// package.json and the code agree: every contributed command is registered, every setting the code
// reads is declared.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { LIVE_KEYS, STARTUP_KEYS } from '../settings';

interface Manifest {
  engines: { vscode: string };
  contributes: { commands: Array<{ command: string }>; configuration: { properties: Record<string, unknown> } };
}

const root = join(__dirname, '..', '..');
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Manifest;
const extension = readFileSync(join(root, 'src', 'extension.ts'), 'utf8');

test('every contributed command is registered by the extension', () => {
  for (const c of manifest.contributes.commands) {
    assert.ok(extension.includes(`command('${c.command}'`), `${c.command} is not registered`);
  }
});

test('every setting the extension reads is declared', () => {
  const props = manifest.contributes.configuration.properties;
  for (const key of ['enable', ...LIVE_KEYS, ...STARTUP_KEYS]) {
    assert.ok(props[`dcopilot.${key}`], `dcopilot.${key} is not declared in package.json`);
  }
});

test('the engine range matches the vscode-languageclient it ships', () => {
  const client = JSON.parse(readFileSync(join(root, 'node_modules', 'vscode-languageclient', 'package.json'), 'utf8')) as Pick<Manifest, 'engines'>;
  assert.equal(manifest.engines.vscode, client.engines.vscode);
});
