// "Rewrite selection…": ask for an instruction, get the in-line edit from the server
// (`dcopilot/inlineEdit`), show it as a diff, and apply it only if the document has not changed since.
import * as path from 'path';
import * as vscode from 'vscode';
import { LanguageClient } from 'vscode-languageclient/node';
import { applyEdits } from './edits';
import { INLINE_EDIT, InlineEditParams, InlineEditResult } from './protocol';

export const PREVIEW_SCHEME = 'dcopilot-preview';

/** Serves the proposed text of open previews (read-only virtual documents). */
export class PreviewContent implements vscode.TextDocumentContentProvider {
  private readonly texts = new Map<string, string>();
  private next = 0;

  add(original: vscode.Uri, text: string): vscode.Uri {
    const uri = vscode.Uri.from({ scheme: PREVIEW_SCHEME, path: original.path, query: String(this.next++) });
    this.texts.set(uri.toString(), text);
    if (this.texts.size > 16) {
      this.texts.delete(this.texts.keys().next().value as string);
    }
    return uri;
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.texts.get(uri.toString()) ?? '';
  }
}

/** Rewrite `range` of `document` (default: the active selection, or its line when empty). */
export async function rewrite(
  client: LanguageClient,
  previews: PreviewContent,
  document: vscode.TextDocument,
  range: vscode.Range,
): Promise<void> {
  const instruction = await vscode.window.showInputBox({
    title: 'dcopilot: Rewrite selection',
    prompt: 'What should change? Leave empty for a plain rewrite.',
    placeHolder: 'e.g. handle an empty list',
  });
  if (instruction === undefined) {
    return; // Escape
  }
  const params: InlineEditParams = {
    textDocument: { uri: document.uri.toString(), version: document.version },
    range: client.code2ProtocolConverter.asRange(range),
    instruction,
  };
  let result: InlineEditResult;
  try {
    result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'dcopilot: rewriting…', cancellable: true },
      (_progress, token) => client.sendRequest<InlineEditResult>(INLINE_EDIT, params, token),
    );
  } catch (err) {
    void vscode.window.showErrorMessage(`dcopilot rewrite: ${err instanceof Error ? err.message : String(err)}`);
    return;
  }
  if (!result || result.edits.length === 0) {
    void vscode.window.showInformationMessage(`dcopilot: ${result?.message || 'the model proposed no change'}`);
    return;
  }
  const stale = () => result.textDocument.version != null && document.version !== result.textDocument.version;
  if (stale()) {
    void vscode.window.showWarningMessage('dcopilot: the document changed while the model was working; nothing applied.');
    return;
  }
  const proposed = previews.add(document.uri, applyEdits(document.getText(), result.edits));
  const title = `dcopilot rewrite: ${path.basename(document.uri.path)} (current ↔ proposed)`;
  await vscode.commands.executeCommand('vscode.diff', document.uri, proposed, title, { preview: true });
  const choice = await vscode.window.showInformationMessage('Apply the dcopilot rewrite?', 'Apply', 'Discard');
  await closePreview(proposed);
  if (choice !== 'Apply') {
    return;
  }
  if (stale()) {
    void vscode.window.showWarningMessage('dcopilot: the document changed during the preview; nothing applied.');
    return;
  }
  const edit = new vscode.WorkspaceEdit();
  for (const e of result.edits) {
    edit.replace(document.uri, client.protocol2CodeConverter.asRange(e.range), e.newText);
  }
  if (!(await vscode.workspace.applyEdit(edit))) {
    void vscode.window.showWarningMessage('dcopilot: VS Code refused the edit; nothing applied.');
  }
}

async function closePreview(proposed: vscode.Uri): Promise<void> {
  for (const group of vscode.window.tabGroups.all) {
    for (const tab of group.tabs) {
      if (tab.input instanceof vscode.TabInputTextDiff && tab.input.modified.toString() === proposed.toString()) {
        await vscode.window.tabGroups.close(tab);
      }
    }
  }
}
