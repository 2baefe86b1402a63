// What happened to the suggestion VS Code was given: shown, accepted (fully or in part) or rejected.
// VS Code's stable API reports none of this to an extension (the handleDid* hooks are proposed API,
// which a published extension cannot use), so it is inferred from what the user does to the document:
// - shown: the provider returned the item (VS Code shows the first item that fits);
// - accepted: VS Code ran the item's command (it does so after a full accept only);
// - partly accepted: text inserted at the suggestion point is a prefix of the rest of the suggestion
//   and longer than one character (word/line accept; a single character counts as typing);
// - rejected: the document or cursor left the suggestion before any of it was taken.
// Pure: offsets are plain numbers (UTF-16 indices, like VS Code's offsetAt), events are returned.
import { AcceptEvent, CompletionEvent, DID_ACCEPT, DID_REJECT, DID_SHOW } from './protocol';

export type Event =
  | { method: typeof DID_SHOW; params: CompletionEvent }
  | { method: typeof DID_ACCEPT; params: AcceptEvent }
  | { method: typeof DID_REJECT; params: CompletionEvent };

export interface Offer {
  id: string;
  uri: string;
  start: number; // document offset where insertText begins
  text: string; // insertText
  typed: number; // characters of `text` already in the document when it was offered (cursor - start)
}

interface Tracked extends Offer {
  taken: number; // characters of `text` now in the document
  partial: boolean; // an accept-word/line happened
}

export class Tracker {
  private current: Tracked | undefined;
  private readonly shown = new Set<string>();

  /** The provider returned `offer` as the first item. */
  offer(offer: Offer): Event[] {
    const events: Event[] = [];
    const t = this.current;
    if (t && t.id !== offer.id) {
      // A new suggestion at the end of the old one (the user typed into it) supersedes it silently.
      const superseded = t.uri === offer.uri && offer.start + offer.typed === t.start + t.taken;
      events.push(...(superseded ? [] : this.end()));
    }
    if (this.current?.id !== offer.id) {
      this.current = { ...offer, taken: offer.typed, partial: false };
    }
    if (!this.shown.has(offer.id)) {
      this.shown.add(offer.id);
      if (this.shown.size > 256) {
        this.shown.delete(this.shown.values().next().value as string);
      }
      events.push({ method: DID_SHOW, params: { id: offer.id } });
    }
    return events;
  }

  /** A document change: `removed` characters at `offset` replaced by `inserted`. */
  change(uri: string, offset: number, removed: number, inserted: string): Event[] {
    const t = this.current;
    if (!t || t.uri !== uri) {
      return [];
    }
    const at = t.start + t.taken;
    const rest = t.text.slice(t.taken);
    if (offset === t.start && inserted === t.text && removed >= t.taken) {
      t.taken = t.text.length; // VS Code's full accept rewrites from the item's start
      return [];
    }
    // A full accept may also replace text right of the cursor (auto-closed brackets): `removed` > 0.
    if (offset === at && inserted.length > 0 && rest.startsWith(inserted) && (removed === 0 || inserted === rest)) {
      t.taken += inserted.length;
      if (t.taken >= t.text.length) {
        return []; // all of it: VS Code runs the item's command next (accepted)
      }
      if (inserted.length > 1) {
        t.partial = true;
        return [{ method: DID_ACCEPT, params: { id: t.id, acceptedLength: t.taken } }];
      }
      return [];
    }
    return this.end();
  }

  /** The cursor moved; anywhere but the end of the taken part ends the suggestion. */
  cursor(uri: string, offset: number): Event[] {
    const t = this.current;
    if (!t) {
      return [];
    }
    if (t.uri === uri && offset === t.start + t.taken) {
      return [];
    }
    return this.end();
  }

  /** The editor lost the suggestion (switched editors, Escape, disabled). */
  end(): Event[] {
    const t = this.current;
    this.current = undefined;
    if (!t || t.partial || t.taken >= t.text.length) {
      return [];
    }
    // Typing part of it by hand and then leaving it is still a reject of the rest.
    return [{ method: DID_REJECT, params: { id: t.id } }];
  }
}
