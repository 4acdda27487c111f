/**
 * Result extraction is linear: 20,000 vs 200,000 unclosed ```result fence lines (the
 * input that made the old regex quadratic). A ratio near 10 is linear; quadratic
 * would be near 100.
 */
import { Redactor } from '../runner/redaction';
import { extractResultBlocks } from '../runner/results';

export interface ExtractCase {
  readonly lines: number;
  readonly ms: number;
}

function time(lines: number): ExtractCase {
  const text = '```result\n'.repeat(lines) + '```result\n{"final": true}\n```\n';
  const redactor = new Redactor();
  // The same number of lines in total per sample; the fastest of 5 samples (a shared machine is noisy).
  const runs = Math.max(1, Math.round(2_000_000 / lines));
  let best = Infinity;
  for (let sample = 0; sample < 6; sample++) {
    const t0 = performance.now();
    for (let i = 0; i < runs; i++) extractResultBlocks(text, redactor);
    if (sample > 0) best = Math.min(best, (performance.now() - t0) / runs); // sample 0 warms up
  }
  return { lines, ms: best };
}

export function benchExtract(): ExtractCase[] {
  return [time(20_000), time(200_000)];
}

export function reportExtract(cases: readonly ExtractCase[]): string[] {
  const [small, big] = cases;
  return [
    'result extraction: unclosed ```result fence lines (linear: 10x the lines, about 10x the time)',
    ...cases.map((c) => `  ${String(c.lines).padStart(7)} lines  ${c.ms.toFixed(1).padStart(7)} ms`),
    `  ratio 200,000 / 20,000: ${(big.ms / small.ms).toFixed(1)} (quadratic would be ~100)`,
  ];
}

if (require.main === module) console.log(reportExtract(benchExtract()).join('\n'));
