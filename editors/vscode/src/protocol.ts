// Wire names and shapes of the dcopilot server's custom messages (lsp/protocol.py, lsp/settings.py).
// Standard LSP goes through vscode-languageclient; only what LSP lacks is spelled here.

export const DID_SHOW = 'dcopilot/didShowCompletion';
export const DID_ACCEPT = 'dcopilot/didAcceptCompletion';
export const DID_REJECT = 'dcopilot/didRejectCompletion';
export const STATS = 'dcopilot/stats';
export const STATUS = 'dcopilot/status';
export const INLINE_EDIT = 'dcopilot/inlineEdit';

/** Server command attached to every inline item; VS Code runs it after a full accept. Args: [{id}]. */
export const CMD_ACCEPTED = 'dcopilot.acceptedCompletion';
/** Code action command whose instruction the client asks the user for. Args: [{textDocument, range}]. */
export const CMD_REWRITE_INSTRUCTION = 'dcopilot.rewriteWithInstruction';

export interface Position { line: number; character: number }
export interface Range { start: Position; end: Position }
export interface DocumentRef { uri: string; version?: number | null }

export interface CompletionEvent { id: string }
// acceptedLength: how much of insertText was taken, in the negotiated position encoding's units; the
// language client offers only utf-16, so JS string lengths (UTF-16 code units) are right as they are.
export interface AcceptEvent { id: string; acceptedLength?: number }

export interface InlineEditParams { textDocument: DocumentRef; range: Range; instruction?: string }
export interface WireTextEdit { range: Range; newText: string }
export interface InlineEditResult { textDocument: DocumentRef; edits: WireTextEdit[]; message?: string }

export type State = 'loading' | 'ready' | 'busy' | 'error' | 'stopped' | 'starting';
export interface Status {
  state: State;
  message?: string;
  model?: string;
  device?: string;
  progress?: number | null;
}

export interface Percentiles { count?: number; p50Ms?: number | null; p95Ms?: number | null; p99Ms?: number | null }
export interface Stats {
  requests?: number;
  answeredFromCache?: number;
  cancelled?: number;
  stale?: number;
  empty?: number;
  shown?: number;
  accepted?: number;
  partiallyAccepted?: number;
  rejected?: number;
  acceptedChars?: number;
  acceptanceRate?: number | null;
  cacheHitRate?: number | null;
  latency?: Percentiles;
  overhead?: Percentiles;
  model?: Percentiles;
  engineRuns?: number;
  engineCancelled?: number;
}

/** The suggestion id the server put in an item's command arguments; undefined for other items. */
export function suggestionId(command: { command: string; arguments?: unknown[] } | undefined): string | undefined {
  const arg = command?.arguments?.[0] as { id?: unknown } | undefined;
  return command?.command === CMD_ACCEPTED && typeof arg?.id === 'string' ? arg.id : undefined;
}
