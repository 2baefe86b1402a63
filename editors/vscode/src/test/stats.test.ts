import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { statsMarkdown } from '../stats';

test('stats report: counts, rates and latency percentiles', () => {
  const md = statsMarkdown({
    requests: 12, answeredFromCache: 3, cacheHitRate: 0.25, shown: 8, accepted: 2, partiallyAccepted: 1, rejected: 4,
    acceptanceRate: 0.375, latency: { count: 12, p50Ms: 81.25, p95Ms: 240, p99Ms: 240 }, engineRuns: 9, engineCancelled: 2,
  });
  assert.match(md, /\| requests answered \| 12 \|/);
  assert.match(md, /\| from cache \| 3 \(25\.0%\) \|/);
  assert.match(md, /\| accepted \/ partly \/ rejected \| 2 \/ 1 \/ 4 \|/);
  assert.match(md, /\| acceptance rate \| 37\.5% \|/);
  assert.match(md, /\| latency p50 \/ p95 \/ p99 \| 81\.3 \/ 240\.0 \/ 240\.0 ms \(n=12\) \|/);
  assert.match(md, /\| model time p50 \/ p95 \/ p99 \| – \|/);
  assert.match(md, /\| model runs \(cancelled\) \| 9 \(2\) \|/);
});

test('an empty stats object renders without numbers', () => {
  const md = statsMarkdown({});
  assert.match(md, /\| acceptance rate \| – \|/);
  assert.match(md, /\| requests answered \| 0 \|/);
});
