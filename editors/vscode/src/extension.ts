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

/** One activation: the server's client and everything shown about it. Disposed when VS Code deactivates us. */
class Extension implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private status: Status = { state: 'starting' };
  private inflight = 0;
  private busy = false;
  private readonly tracker = new Tracker();
  private readonly previews = new PreviewContent();
  private readonly output = vscode.window.createOutputChannel('dcopilot', { log: true });
  private readonly statusItem = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);

  constructor(context: vscode.ExtensionContext) {
    this.statusItem.command = 'dcopilot.statusMenu';
    this.statusItem.show();
    const language = () => vscode.window.activeTextEditor?.document.languageId;
    const command = (name: string, fn: (...args: unknown[]) => unknown) =>
      context.subscriptions.push(vscode.commands.registerCommand(name, fn));

    context.subscriptions.push(
      this, // first: VS Code disposes in order, so the server is told to stop before the log channel closes
      this.output,
      this.statusItem,
      vscode.workspace.registerTextDocumentContentProvider(PREVIEW_SCHEME, this.previews),
      vscode.workspace.onDidChangeTextDocument((e) => {
        for (const c of e.contentChanges) {
          this.send(this.tracker.change(e.document.uri.toString(), c.rangeOffset, c.rangeLength, c.text));
        }
      }),
      vscode.window.onDidChangeTextEditorSelection((e) => {
        this.send(this.tracker.cursor(e.textEditor.document.uri.toString(), e.textEditor.document.offsetAt(e.selections[0].active)));
      }),
      vscode.window.onDidChangeActiveTextEditor(() => {
        this.send(this.tracker.end());
        this.renderStatus();
      }),
      vscode.workspace.onDidChangeConfiguration(async (e) => {
        if (!e.affectsConfiguration('dcopilot')) {
          return;
        }
        this.renderStatus();
        if (this.client?.state === State.Running && (e.affectsConfiguration('dcopilot.enable') || LIVE_KEYS.some((k) => e.affectsConfiguration(`dcopilot.${k}`)))) {
          void this.client.sendNotification('workspace/didChangeConfiguration', { settings: { dcopilot: liveSettings(explicit, enabledFor('*')) } });
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
      if (!editor || !this.client) {
        return;
      }
      const sel = editor.selection;
      const range = sel.isEmpty ? editor.document.lineAt(sel.active.line).range : new vscode.Range(sel.start, sel.end);
      await rewrite(this.client, this.previews, editor.document, range);
    });
    command('dcopilot.showStats', () => this.showStats());
    command('dcopilot.restart', async () => {
      await this.stop();
      await this.start();
    });
    command('dcopilot.openLog', () => this.output.show(true));
    command('dcopilot.statusMenu', () => this.statusMenu());

    this.renderStatus();
  }

  private renderStatus(): void {
    const editor = vscode.window.activeTextEditor;
    const enabled = editor ? enabledFor(editor.document.languageId) : enabledFor('*');
    const shown: Status = this.busy && this.status.state === 'ready' ? { ...this.status, state: 'busy' } : this.status;
    const view = statusView(shown, enabled);
    this.statusItem.text = view.text;
    this.statusItem.tooltip = view.tooltip;
    // Read out by screen readers (the icon alone says nothing): the state in words, as in the tooltip.
    this.statusItem.accessibilityInformation = { label: view.tooltip };
    this.statusItem.backgroundColor = view.error ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  }

  private send(events: Event[]): void {
    const client = this.client;
    if (client?.state !== State.Running) {
      return;
    }
    for (const e of events) {
      void client.sendNotification(e.method, e.params);
    }
  }

  private readonly middleware: Middleware = {
    provideInlineCompletionItems: async (document, position, context, token, next) => {
      if (!enabledFor(document.languageId)) {
        return null;
      }
      this.inflight++;
      const timer = setTimeout(() => {
        this.busy = this.inflight > 0;
        this.renderStatus();
      }, BUSY_AFTER_MS);
      try {
        const result = await next(document, position, context, token);
        const items = result ? (Array.isArray(result) ? result : result.items) : [];
        const first = items[0];
        const id = first && suggestionId(first.command);
        if (id && !token.isCancellationRequested && typeof first.insertText === 'string') {
          const start = document.offsetAt(first.range?.start ?? position);
          this.send(this.tracker.offer({ id, uri: document.uri.toString(), start, text: first.insertText, typed: document.offsetAt(position) - start }));
        }
        return result;
      } finally {
        clearTimeout(timer);
        this.inflight--;
        if (this.busy && this.inflight === 0) {
          this.busy = false;
          this.renderStatus();
        }
      }
    },
    executeCommand: async (command, args, next) => {
      // The "(instruction)…" code action: ask for the instruction here, then the same preview flow.
      if (command === CMD_REWRITE_INSTRUCTION && this.client) {
        const p = args[0] as InlineEditParams;
        const document = await vscode.workspace.openTextDocument(vscode.Uri.parse(p.textDocument.uri));
        return rewrite(this.client, this.previews, document, this.client.protocol2CodeConverter.asRange(p.range));
      }
      return next(command, args) as unknown; // the server's answer, passed on unread
    },
  };

  private serverOptions(): ServerOptions | string {
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
    this.output.info(`starting: ${found.command} ${args.join(' ')}`);
    return { command: found.command, args, transport: TransportKind.stdio }; // the client adds `--stdio`
  }

  async start(): Promise<void> {
    const server = this.serverOptions();
    if (typeof server === 'string') {
      this.status = { state: 'error', message: server };
      this.renderStatus();
      const choice = await vscode.window.showErrorMessage(`dcopilot: ${server}`, 'Open Settings');
      if (choice) {
        void vscode.commands.executeCommand('workbench.action.openSettings', 'dcopilot.server');
      }
      return;
    }
    const options: LanguageClientOptions = {
      documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
      initializationOptions: liveSettings(explicit, enabledFor('*')),
      outputChannel: this.output,
      middleware: this.middleware,
      // A crashed server is restarted by the client's default policy (a few times, then it gives up and
      // the status bar says stopped).
    };
    const client = new LanguageClient('dcopilot', 'dcopilot', server, options);
    this.client = client;
    client.onDidChangeState((e) => {
      if (e.newState === State.Stopped) {
        this.status = { state: 'stopped', message: this.status.state === 'error' ? this.status.message : '' };
        this.renderStatus();
      }
    });
    // Registered before start: the server reports loading progress right after `initialized`.
    client.onNotification(STATUS, (s: Status) => {
      this.status = s;
      this.renderStatus();
    });
    this.status = { state: 'starting' };
    this.renderStatus();
    try {
      await client.start();
    } catch (err) {
      this.status = { state: 'error', message: `the server did not start: ${err instanceof Error ? err.message : String(err)}` };
      this.renderStatus();
    }
  }

  async stop(): Promise<void> {
    const old = this.client;
    this.client = undefined;
    this.send(this.tracker.end());
    if (old) {
      await old.stop().catch(() => undefined);
    }
  }

  /** VS Code does not wait for a disposable; the server also exits when its stdin closes. */
  dispose(): void {
    void this.stop();
  }

  private async showStats(): Promise<void> {
    if (this.client?.state !== State.Running) {
      void vscode.window.showWarningMessage('dcopilot: the server is not running.');
      return;
    }
    const stats = await this.client.sendRequest<Stats>(STATS, {});
    const doc = await vscode.workspace.openTextDocument({ language: 'markdown', content: statsMarkdown(stats) });
    await vscode.window.showTextDocument(doc, { preview: true });
  }

  private async statusMenu(): Promise<void> {
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
    const tooltip = this.statusItem.tooltip; // renderStatus sets a plain string
    const pick = await vscode.window.showQuickPick(items, { title: typeof tooltip === 'string' ? tooltip : undefined });
    if (pick) {
      await vscode.commands.executeCommand(pick.command);
    }
  }
}

async function setEnabled(key: string, value: boolean): Promise<void> {
  await config().update('enable', withEntry(config().get<EnableMap>('enable'), key, value), vscode.ConfigurationTarget.Global);
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  await new Extension(context).start();
}
