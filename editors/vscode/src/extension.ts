// dcopilot for VS Code: a thin launcher. `dcopilot serve` runs over stdio under vscode-languageclient,
// whose standard inline-completion feature gives ghost text with VS Code's own accept, accept-word
// (Ctrl/Cmd+Right) and accept-line. The extension adds only what LSP leaves to clients: per-language
// enablement, the show/accept/reject notifications (tracker.ts), the status bar, "Rewrite selection…"
// with a preview, stats, restart and the log.
import * as fs from 'fs';
import * as vscode from 'vscode';
import { LanguageClient, LanguageClientOptions, Middleware, ServerOptions, State, TransportKind } from 'vscode-languageclient/node';
import { CMD_REWRITE_INSTRUCTION, InlineEditParams, STATS, STATUS, Stats, Status, suggestionId } from './protocol';
import { PREVIEW_SCHEME, PreviewContent, rewrite } from './rewrite';
import { findServer } from './serverPath';
import { EnableMap, LIVE_KEYS, STARTUP_KEYS, isEnabled, liveSettings, serverArgs, withEntry } from './settings';
import { statsMarkdown } from './stats';
import { statusView } from './status';
import { Event, Tracker } from './tracker';

const BUSY_AFTER_MS = 300; // show "busy" only for requests slower than this: no flicker while typing

let client: LanguageClient | undefined;
let status: Status = { state: 'starting' };
let inflight = 0;
let busy = false;
let statusItem: vscode.StatusBarItem;
let output: vscode.LogOutputChannel;
const tracker = new Tracker();
const previews = new PreviewContent();

function config(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration('dcopilot');
}

/** A setting's value only when the user set it somewhere (defaults stay the server's business). */
function explicit(key: string): unknown {
  const i = config().inspect(key);
  return i?.workspaceFolderValue ?? i?.workspaceValue ?? i?.globalValue;
}

function enabledFor(languageId: string): boolean {
  return isEnabled(config().get<EnableMap>('enable'), languageId);
}

function renderStatus(): void {
  const editor = vscode.window.activeTextEditor;
  const enabled = editor ? enabledFor(editor.document.languageId) : enabledFor('*');
  const shown: Status = busy && status.state === 'ready' ? { ...status, state: 'busy' } : status;
  const view = statusView(shown, enabled);
  statusItem.text = view.text;
  statusItem.tooltip = view.tooltip;
  // Read out by screen readers (the icon alone says nothing): the state in words, as in the tooltip.
  statusItem.accessibilityInformation = { label: view.tooltip };
  statusItem.backgroundColor = view.error ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
}

function send(events: Event[]): void {
  if (client?.state !== State.Running) {
    return;
  }
  for (const e of events) {
    void client.sendNotification(e.method, e.params);
  }
}

const middleware: Middleware = {
  async provideInlineCompletionItems(document, position, context, token, next) {
    if (!enabledFor(document.languageId)) {
      return null;
    }
    inflight++;
    const timer = setTimeout(() => { busy = inflight > 0; renderStatus(); }, BUSY_AFTER_MS);
    try {
      const result = await next(document, position, context, token);
      const items = result ? (Array.isArray(result) ? result : result.items) : [];
      const first = items[0];
      const id = first && suggestionId(first.command);
      if (id && !token.isCancellationRequested && typeof first.insertText === 'string') {
        const start = document.offsetAt(first.range?.start ?? position);
        send(tracker.offer({ id, uri: document.uri.toString(), start, text: first.insertText, typed: document.offsetAt(position) - start }));
      }
      return result;
    } finally {
      clearTimeout(timer);
      inflight--;
      if (busy && inflight === 0) {
        busy = false;
        renderStatus();
      }
    }
  },
  async executeCommand(command, args, next) {
    // The "(instruction)…" code action: ask for the instruction here, then the same preview flow.
    if (command === CMD_REWRITE_INSTRUCTION && client) {
      const p = args[0] as InlineEditParams;
      const document = await vscode.workspace.openTextDocument(vscode.Uri.parse(p.textDocument.uri));
      return rewrite(client, previews, document, client.protocol2CodeConverter.asRange(p.range));
    }
    return next(command, args);
  },
};

function serverOptions(): ServerOptions | string {
  const folders = (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath);
  const found = findServer({
    configuredPath: config().get<string>('server.path', ''),
    python: config().get<string>('server.python', ''),
    env: process.env,
    workspaceFolders: folders,
    platform: process.platform,
    isExecutable: (file) => {
      try {
        fs.accessSync(file, fs.constants.X_OK);
        return fs.statSync(file).isFile();
      } catch {
        return false;
      }
    },
  });
  if ('error' in found) {
    return found.error;
  }
  // The server exits once this extension host has gone, even if something else still holds its stdin.
  const args = [...found.args, ...serverArgs(explicit), `--clientProcessId=${process.pid}`];
  output.info(`starting: ${found.command} ${args.join(' ')}`);
  return { command: found.command, args, transport: TransportKind.stdio }; // the client adds `--stdio`
}

async function start(): Promise<void> {
  const server = serverOptions();
  if (typeof server === 'string') {
    status = { state: 'error', message: server };
    renderStatus();
    const choice = await vscode.window.showErrorMessage(`dcopilot: ${server}`, 'Open Settings');
    if (choice) {
      void vscode.commands.executeCommand('workbench.action.openSettings', 'dcopilot.server');
    }
    return;
  }
  const options: LanguageClientOptions = {
    documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
    initializationOptions: liveSettings(explicit, enabledFor('*')),
    outputChannel: output,
    middleware,
    // A crashed server is restarted by the client's default policy (a few times, then it gives up and
    // the status bar says stopped).
  };
  client = new LanguageClient('dcopilot', 'dcopilot', server, options);
  client.onDidChangeState((e) => {
    if (e.newState === State.Stopped) {
      status = { state: 'stopped', message: status.state === 'error' ? status.message : '' };
      renderStatus();
    }
  });
  // Registered before start: the server reports loading progress right after `initialized`.
  client.onNotification(STATUS, (s: Status) => {
    status = s;
    renderStatus();
  });
  status = { state: 'starting' };
  renderStatus();
  try {
    await client.start();
  } catch (err) {
    status = { state: 'error', message: `the server did not start: ${err instanceof Error ? err.message : String(err)}` };
    renderStatus();
  }
}

async function stop(): Promise<void> {
  const old = client;
  client = undefined;
  send(tracker.end());
  if (old) {
    await old.stop().catch(() => undefined);
  }
}

async function setEnabled(key: string, value: boolean): Promise<void> {
  await config().update('enable', withEntry(config().get<EnableMap>('enable'), key, value), vscode.ConfigurationTarget.Global);
}

async function showStats(): Promise<void> {
  if (client?.state !== State.Running) {
    void vscode.window.showWarningMessage('dcopilot: the server is not running.');
    return;
  }
  const stats = await client.sendRequest<Stats>(STATS, {});
  const doc = await vscode.workspace.openTextDocument({ language: 'markdown', content: statsMarkdown(stats) });
  await vscode.window.showTextDocument(doc, { preview: true });
}

async function statusMenu(): Promise<void> {
  const language = vscode.window.activeTextEditor?.document.languageId;
  const on = enabledFor('*');
  const items: Array<vscode.QuickPickItem & { command: string }> = [
    { label: on ? 'Disable dcopilot' : 'Enable dcopilot', command: on ? 'dcopilot.disable' : 'dcopilot.enable' },
    ...(language
      ? [enabledFor(language)
        ? { label: `Disable for ${language}`, command: 'dcopilot.disableLanguage' }
        : { label: `Enable for ${language}`, command: 'dcopilot.enableLanguage' }]
      : []),
    { label: 'Show stats', command: 'dcopilot.showStats' },
    { label: 'Restart server', command: 'dcopilot.restart' },
    { label: 'Open log', command: 'dcopilot.openLog' },
  ];
  const pick = await vscode.window.showQuickPick(items, { title: statusItem.tooltip?.toString() });
  if (pick) {
    await vscode.commands.executeCommand(pick.command);
  }
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  output = vscode.window.createOutputChannel('dcopilot', { log: true });
  statusItem = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);
  statusItem.command = 'dcopilot.statusMenu';
  statusItem.show();
  const language = () => vscode.window.activeTextEditor?.document.languageId;
  const command = (name: string, fn: (...args: unknown[]) => unknown) =>
    context.subscriptions.push(vscode.commands.registerCommand(name, fn));

  context.subscriptions.push(
    output,
    statusItem,
    vscode.workspace.registerTextDocumentContentProvider(PREVIEW_SCHEME, previews),
    vscode.workspace.onDidChangeTextDocument((e) => {
      for (const c of e.contentChanges) {
        send(tracker.change(e.document.uri.toString(), c.rangeOffset, c.rangeLength, c.text));
      }
    }),
    vscode.window.onDidChangeTextEditorSelection((e) => {
      send(tracker.cursor(e.textEditor.document.uri.toString(), e.textEditor.document.offsetAt(e.selections[0].active)));
    }),
    vscode.window.onDidChangeActiveTextEditor(() => {
      send(tracker.end());
      renderStatus();
    }),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (!e.affectsConfiguration('dcopilot')) {
        return;
      }
      renderStatus();
      if (client?.state === State.Running && (e.affectsConfiguration('dcopilot.enable') || LIVE_KEYS.some((k) => e.affectsConfiguration(`dcopilot.${k}`)))) {
        void client.sendNotification('workspace/didChangeConfiguration', { settings: { dcopilot: liveSettings(explicit, enabledFor('*')) } });
      }
      if (STARTUP_KEYS.some((k) => e.affectsConfiguration(`dcopilot.${k}`))) {
        const choice = await vscode.window.showInformationMessage('Restart the dcopilot server to use the new settings?', 'Restart');
        if (choice) {
          await vscode.commands.executeCommand('dcopilot.restart');
        }
      }
    }),
  );

  command('dcopilot.enable', () => setEnabled('*', true));
  command('dcopilot.disable', () => setEnabled('*', false));
  command('dcopilot.enableLanguage', () => language() && setEnabled(language()!, true));
  command('dcopilot.disableLanguage', () => language() && setEnabled(language()!, false));
  command('dcopilot.trigger', () => vscode.commands.executeCommand('editor.action.inlineSuggest.trigger'));
  command('dcopilot.rewriteSelection', async () => {
    const editor = vscode.window.activeTextEditor;
    if (!editor || !client) {
      return;
    }
    const sel = editor.selection;
    const range = sel.isEmpty ? editor.document.lineAt(sel.active.line).range : new vscode.Range(sel.start, sel.end);
    await rewrite(client, previews, editor.document, range);
  });
  command('dcopilot.showStats', showStats);
  command('dcopilot.restart', async () => {
    await stop();
    await start();
  });
  command('dcopilot.openLog', () => output.show(true));
  command('dcopilot.statusMenu', statusMenu);

  renderStatus();
  await start();
}

export async function deactivate(): Promise<void> {
  await stop();
}
