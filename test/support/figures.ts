// Measured figures from the reliability suites, written where docs/reliability.md's numbers come
// from: test-artifacts/reliability/<suite>.json (not committed; re-run the suite to refresh).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('../../test-artifacts/reliability/', import.meta.url));

export function recordFigures(suite: string, key: string, value: unknown): void {
  mkdirSync(dir, { recursive: true });
  const file = `${dir}${suite}.json`;
  let all: Record<string, unknown> = {};
  try {
    all = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    /* first figure of this suite */
  }
  all[key] = value;
  writeFileSync(file, `${JSON.stringify(all, null, 2)}\n`);
  console.log(`# figures ${suite}.${key}: ${JSON.stringify(value)}`);
}

/** p50/p90/p99/max of a sample, in the sample's unit. */
export function percentiles(sample: number[]): { n: number; p50: number; p90: number; p99: number; max: number } {
  const s = [...sample].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return { n: s.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: s[s.length - 1]! };
}
