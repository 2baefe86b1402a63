// VS Code settings -> what the server gets. Two kinds, kept apart on purpose:
// - startup settings (model, device, log) become `dcopilot serve` flags; they need a restart;
// - live settings (lsp/settings.py, camelCase) go in initializationOptions and
//   workspace/didChangeConfiguration and apply at once.
// Only settings the user actually set are passed, so config.toml stays the baseline.

/** Reads a setting under "dcopilot."; undefined when the user left it unset. */
export type Lookup = (key: string) => unknown;

export const LIVE_KEYS = [
  'debounceMs', 'maxTokens', 'hypotheses', 'multiline', 'minScore', 'candidates', 'speculative',
  'completionItems',
] as const;

/** Setting -> `dcopilot serve` flag. */
const FLAGS: ReadonlyArray<[string, string]> = [
  ['server.configFile', '--config'],
  ['model.path', '--model'],
  ['model.device', '--device'],
  ['model.dtype', '--dtype'],
  ['model.quantize', '--quantize'],
  ['server.logLevel', '--log-level'],
];

export const STARTUP_KEYS = ['server.path', 'server.python', 'server.traceText', ...FLAGS.map(([key]) => key)];

/** Flags for `dcopilot serve`, from the startup settings that are set. */
export function serverArgs(get: Lookup): string[] {
  const args = ['serve'];
  for (const [key, flag] of FLAGS) {
    const value = get(key);
    if (typeof value === 'string' && value !== '') {
      args.push(flag, value);
    }
  }
  if (get('server.traceText') === true) {
    args.push('--trace');
  }
  return args;
}

/** The live settings object the server applies (lsp/settings.py), with only the keys that are set. */
export function liveSettings(get: Lookup, enabled: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = { enable: enabled };
  for (const key of LIVE_KEYS) {
    const value = get(key);
    if (value !== undefined && value !== null) {
      out[key] = value;
    }
  }
  return out;
}

export type EnableMap = Record<string, boolean>;

/** Whether suggestions are on for `languageId`: its own entry, else "*", else on. */
export function isEnabled(map: EnableMap | undefined, languageId: string): boolean {
  if (map && typeof map[languageId] === 'boolean') {
    return map[languageId];
  }
  if (map && typeof map['*'] === 'boolean') {
    return map['*'];
  }
  return true;
}

/** A copy of `map` with `key` ("*" or a language id) set to `value`. */
export function withEntry(map: EnableMap | undefined, key: string, value: boolean): EnableMap {
  return { ...(map ?? {}), [key]: value };
}
