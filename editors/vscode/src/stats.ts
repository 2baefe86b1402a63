// `dcopilot/stats` -> a Markdown report. Pure and unit-tested; the numbers are the server's.
import { Percentiles, Stats } from './protocol';

function pct(x: number | null | undefined): string {
  return typeof x === 'number' ? `${(x * 100).toFixed(1)}%` : '–';
}

function ms(p: Percentiles | undefined): string {
  if (!p || !p.count) {
    return '–';
  }
  const f = (x: number | null | undefined) => (typeof x === 'number' ? x.toFixed(1) : '–');
  return `${f(p.p50Ms)} / ${f(p.p95Ms)} / ${f(p.p99Ms)} ms (n=${p.count})`;
}

export function statsMarkdown(s: Stats): string {
  const n = (x: number | undefined) => String(x ?? 0);
  return [
    '# dcopilot statistics',
    '',
    'Kept in the server\'s memory since it started; nothing is sent anywhere.',
    '',
    '| | |',
    '|---|---|',
    `| requests answered | ${n(s.requests)} |`,
    `| from cache | ${n(s.answeredFromCache)} (${pct(s.cacheHitRate)}) |`,
    `| cancelled / stale / empty | ${n(s.cancelled)} / ${n(s.stale)} / ${n(s.empty)} |`,
    `| shown | ${n(s.shown)} |`,
    `| accepted / partly / rejected | ${n(s.accepted)} / ${n(s.partiallyAccepted)} / ${n(s.rejected)} |`,
    `| acceptance rate | ${pct(s.acceptanceRate)} |`,
    `| accepted characters | ${n(s.acceptedChars)} |`,
    `| latency p50 / p95 / p99 | ${ms(s.latency)} |`,
    `| server overhead p50 / p95 / p99 | ${ms(s.overhead)} |`,
    `| model time p50 / p95 / p99 | ${ms(s.model)} |`,
    `| model runs (cancelled) | ${n(s.engineRuns)} (${n(s.engineCancelled)}) |`,
    '',
  ].join('\n');
}
