// Text edits on plain strings: the rewrite preview shows the document with the server's edits applied
// before anything touches the real document. Positions are LSP (line, UTF-16 character), which is what
// JavaScript string indices count.
import { Position, WireTextEdit } from './protocol';

/** Offset of `pos` in `text`; out-of-range positions clamp, as LSP asks. */
export function offsetAt(text: string, pos: Position): number {
  let offset = 0;
  for (let line = 0; line < pos.line; line++) {
    const nl = text.indexOf('\n', offset);
    if (nl < 0) {
      return text.length;
    }
    offset = nl + 1;
  }
  const nl = text.indexOf('\n', offset);
  let end = nl < 0 ? text.length : nl;
  if (end > offset && text[end - 1] === '\r') {
    end -= 1;
  }
  return Math.min(offset + Math.max(0, pos.character), end);
}

/** `text` with `edits` applied. Edits must not overlap (LSP guarantees it); order does not matter. */
export function applyEdits(text: string, edits: WireTextEdit[]): string {
  const spans = edits
    .map((e) => ({ start: offsetAt(text, e.range.start), end: offsetAt(text, e.range.end), newText: e.newText }))
    .sort((a, b) => a.start - b.start || a.end - b.end);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i].start < spans[i - 1].end) {
      throw new Error('overlapping edits');
    }
  }
  let out = '';
  let at = 0;
  for (const s of spans) {
    out += text.slice(at, s.start) + s.newText;
    at = s.end;
  }
  return out + text.slice(at);
}
