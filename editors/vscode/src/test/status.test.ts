import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { statusView } from '../status';

test('loading shows progress and where the model runs', () => {
  const v = statusView({ state: 'loading', progress: 0.426, model: 'embedded', device: 'cpu', message: 'reading weights' }, true);
  assert.equal(v.text, '$(loading~spin) dcopilot 43%');
  assert.match(v.tooltip, /embedded on cpu.*reading weights/);
  assert.equal(v.error, false);
});

test('loading without progress, and clamped progress', () => {
  assert.equal(statusView({ state: 'loading' }, true).text, '$(loading~spin) dcopilot');
  assert.equal(statusView({ state: 'loading', progress: 7 }, true).text, '$(loading~spin) dcopilot 100%');
});

test('ready, disabled, busy', () => {
  assert.equal(statusView({ state: 'ready' }, true).text, '$(sparkle) dcopilot');
  assert.match(statusView({ state: 'ready' }, false).tooltip, /disabled/);
  assert.equal(statusView({ state: 'busy' }, true).text, '$(sync~spin) dcopilot');
});

test('error shows the reason with the error colour', () => {
  const v = statusView({ state: 'error', message: 'model.safetensors: no such file' }, true);
  assert.equal(v.error, true);
  assert.match(v.tooltip, /no such file/);
});

test('stopped after a crash is an error; a clean stop is not', () => {
  assert.equal(statusView({ state: 'stopped', message: 'exited 1' }, true).error, true);
  assert.equal(statusView({ state: 'stopped' }, true).error, false);
});
