// Where `dcopilot serve` comes from: the configured path, else the Python environment the user works in
// ($VIRTUAL_ENV, the workspace's .venv or venv), else PATH, else `python -m dcopilot.copilot`. Pure: the file
// system and environment are passed in, so the order is unit-tested.
import * as path from 'path';

export interface Found { command: string; args: string[] }

export interface Probe {
  configuredPath: string;
  python: string;
  env: Record<string, string | undefined>;
  workspaceFolders: string[];
  platform: NodeJS.Platform;
  isExecutable: (file: string) => boolean;
}

function binDir(venv: string, platform: NodeJS.Platform): string {
  return platform === 'win32' ? path.join(venv, 'Scripts') : path.join(venv, 'bin');
}

function exe(name: string, platform: NodeJS.Platform): string {
  return platform === 'win32' ? `${name}.exe` : name;
}

/** The server command without its `serve ...` arguments, or an error message that says what to set. */
export function findServer(p: Probe): Found | { error: string } {
  const name = exe('dcopilot', p.platform);
  if (p.configuredPath) {
    return p.isExecutable(p.configuredPath)
      ? { command: p.configuredPath, args: [] }
      : { error: `dcopilot.server.path is set to ${p.configuredPath}, which is not an executable file` };
  }
  const candidates: string[] = [];
  if (p.env.VIRTUAL_ENV) {
    candidates.push(path.join(binDir(p.env.VIRTUAL_ENV, p.platform), name));
  }
  for (const folder of p.workspaceFolders) {
    for (const venv of ['.venv', 'venv']) {
      candidates.push(path.join(binDir(path.join(folder, venv), p.platform), name));
    }
  }
  const sep = p.platform === 'win32' ? ';' : ':';
  for (const dir of (p.env.PATH ?? '').split(sep).filter(Boolean)) {
    candidates.push(path.join(dir, name));
  }
  const hit = candidates.find((file) => p.isExecutable(file));
  if (hit) {
    return { command: hit, args: [] };
  }
  if (p.python) {
    // The interpreter's own bin directory first: that is where pip put the entry point.
    const sibling = path.join(path.dirname(p.python), name);
    if (p.isExecutable(sibling)) {
      return { command: sibling, args: [] };
    }
    if (p.isExecutable(p.python)) {
      return { command: p.python, args: ['-m', 'dcopilot.copilot'] };
    }
  }
  return {
    error:
      'dcopilot was not found (looked in $VIRTUAL_ENV, the workspace .venv/venv and PATH). ' +
      'Install it with `pip install dcopilot`, or set dcopilot.server.path or dcopilot.server.python.',
  };
}
