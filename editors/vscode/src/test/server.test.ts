// The extension's wire logic against the real `dcopilot serve` (deterministic backend, started by
// tests/editors/test_vscode_extension.py through DCOPILOT_TEST_CMD): the settings it sends, the items it
// reads, the notifications the tracker produces, the rewrite request and the stats report. VS Code is
// replaced by plain JSON-RPC here; everything the extension itself computes is its real code.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import { applyEdits } from '../edits';
import { INLINE_EDIT, InlineEditParams, InlineEditResult, STATS, STATUS, Stats, Status, suggestionId } from '../protocol';
import { liveSettings } from '../settings';
import { statsMarkdown } from '../stats';
import { Tracker } from '../tracker';

const cmd = process.env.DCOPILOT_TEST_CMD ? (JSON.parse(process.env.DCOPILOT_TEST_CMD) as string[]) : undefined;

interface Item { insertText: string; range?: unknown; command?: { title: string; command: string; arguments?: unknown[] } }

test('the extension logic against dcopilot serve', { skip: !cmd && 'DCOPILOT_TEST_CMD not set', timeout: 60_000 }, async () => {
  const proc = spawn(cmd![0], cmd!.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const rpc = createMessageConnection(new StreamMessageReader(proc.stdout), new StreamMessageWriter(proc.stdin));
  const ready = new Promise<void>((resolve) => rpc.onNotification(STATUS, (s: Status) => { if (s.state === 'ready') { resolve(); } }));
  rpc.onRequest('window/workDoneProgress/create', () => null);
  rpc.listen();
  try {
    const settings = (values: Record<string, unknown>, enabled: boolean) => liveSettings((k) => values[k], enabled);
    await rpc.sendRequest('initialize', {
      processId: process.pid, rootUri: null, capabilities: {}, initializationOptions: settings({ maxTokens: 32 }, true),
    });
    await rpc.sendNotification('initialized', {});
    await ready;

    const uri = 'file:///tmp/dcopilot-vscode-test.py';
    const text = 'def foo(a, b):\n    ret';
    await rpc.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'python', version: 1, text } });
    const complete = async () => {
      const result = await rpc.sendRequest<{ items: Item[] }>('textDocument/inlineCompletion', {
        textDocument: { uri }, position: { line: 1, character: 7 }, context: { triggerKind: 1 },
      });
      return result.items;
    };
    const offset = text.length;

    // Shown, then accepted in full: VS Code runs the item's command, which the client forwards.
    const tracker = new Tracker();
    const send = async (events: ReturnType<Tracker['offer']>) => {
      for (const e of events) {
        await rpc.sendNotification(e.method, e.params);
      }
    };
    let items = await complete();
    assert.equal(items[0].insertText, 'urn a + b');
    const first = suggestionId(items[0].command);
    assert.ok(first, 'items carry a suggestion id');
    await send(tracker.offer({ id: first, uri, start: offset, text: items[0].insertText, typed: 0 }));
    assert.deepEqual(tracker.change(uri, offset, 0, items[0].insertText), []);
    await rpc.sendRequest('workspace/executeCommand', { command: items[0].command!.command, arguments: items[0].command!.arguments });

    // Shown, then a word taken (partial accept), then left: no reject after a partial accept.
    items = await complete();
    const second = suggestionId(items[0].command)!;
    await send(tracker.offer({ id: second, uri, start: offset, text: items[0].insertText, typed: 0 }));
    await send(tracker.change(uri, offset, 0, 'urn'));
    await send(tracker.end());

    // Shown, then rejected by moving away.
    items = await complete();
    const third = suggestionId(items[0].command)!;
    await send(tracker.offer({ id: third, uri, start: offset, text: items[0].insertText, typed: 0 }));
    await send(tracker.cursor(uri, 0));

    const stats = await rpc.sendRequest<Stats>(STATS, {});
    assert.deepEqual([stats.shown, stats.accepted, stats.partiallyAccepted, stats.rejected], [3, 1, 1, 1]);
    assert.match(statsMarkdown(stats), /\| accepted \/ partly \/ rejected \| 1 \/ 1 \/ 1 \|/);

    // The rewrite request as rewrite.ts sends it, and the preview text computed from its answer.
    const params: InlineEditParams = {
      textDocument: { uri, version: 1 }, range: { start: { line: 0, character: 0 }, end: { line: 0, character: 14 } }, instruction: '',
    };
    const edit = await rpc.sendRequest<InlineEditResult>(INLINE_EDIT, params);
    assert.equal(edit.textDocument.version, 1);
    assert.equal(applyEdits(text, edit.edits), 'def bar(a, b):\n    ret');

    // A stale version is refused by the server, not applied.
    await rpc.sendNotification('textDocument/didChange', {
      textDocument: { uri, version: 2 }, contentChanges: [{ text: text + 'u' }],
    });
    await assert.rejects(rpc.sendRequest(INLINE_EDIT, params), /version/);

    // Live settings through didChangeConfiguration: disabled means no suggestions.
    await rpc.sendNotification('workspace/didChangeConfiguration', { settings: { dcopilot: settings({}, false) } });
    assert.deepEqual(await complete(), []);

    await rpc.sendRequest('shutdown');
    await rpc.sendNotification('exit');
  } catch (err) {
    throw new Error(`${err instanceof Error ? err.stack : String(err)}\n--- server stderr ---\n${stderr.slice(-4000)}`, { cause: err });
  } finally {
    rpc.dispose();
    proc.kill();
  }
});
