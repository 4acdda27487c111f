/**
 * Synthesis cost as platforms grow: build + validate (the security policy)
 * + serialize to YAML, against the floor of serializing the same objects
 * with `yaml` alone. Each size runs in its own process so peak RSS is its own.
 */
import { App, Chart } from 'cdk8s';
import { fork } from 'child_process';
import { stringify } from 'yaml';
import { synthesize } from '../constructs';
import { buildPlatform, PlatformDefinition } from '../stacks/platform-definition';

export interface SynthCase {
  readonly pools: number;
  readonly tasks: number;
}

export interface SynthResult extends SynthCase {
  readonly objects: number;
  readonly synthMs: number;
  readonly floorMs: number;
  readonly peakRssMb: number;
}

export const SYNTH_CASES: SynthCase[] = [
  { pools: 1, tasks: 10 },
  { pools: 10, tasks: 100 },
  { pools: 100, tasks: 1000 },
];

function definition({ pools, tasks }: SynthCase): PlatformDefinition {
  const presets = ['codex', 'claude-code', 'gemini-cli', 'opencode'];
  return {
    namespace: 'bench',
    egress: [{ name: 'web', rules: [{ cidr: '0.0.0.0/0' }] }],
    credentials: [{ secretName: 'keys', keys: ['OPENAI_API_KEY', 'ANTHROPIC_API_KEY', 'GEMINI_API_KEY'], grants: Object.fromEntries(Array.from({ length: pools }, (_, i) => [`pool-${i}`, {}])) }],
    pools: Array.from({ length: pools }, (_, i) => ({ name: `pool-${i}`, harnesses: [presets[i % presets.length]], egress: ['web'] })),
    tasks: Array.from({ length: tasks }, (_, i) => ({
      name: `task-${i}`,
      pool: `pool-${i % pools}`,
      model: 'bench-model',
      prompt: `Task ${i}: fix the failing test and report with a result block.`,
      sources: [{ url: `https://git.example.com/org/repo-${i}.git`, branch: 'main' }],
    })),
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** One size, in this process. */
export function measureSynth(c: SynthCase, repeats = 3): SynthResult {
  const synthTimes: number[] = [];
  const floorTimes: number[] = [];
  let objects = 0;
  for (let r = 0; r < repeats; r++) {
    const start = process.hrtime.bigint();
    const app = new App({ outdir: '/tmp/paddock-bench' });
    const chart = new Chart(app, 'bench', { disableResourceNameHashes: true });
    buildPlatform(chart, 'platform', definition(c));
    const json = synthesize(chart);
    const yamlText = json.map((o) => stringify(o)).join('---\n');
    synthTimes.push(Number(process.hrtime.bigint() - start) / 1e6);
    objects = json.length;
    // The floor: the same objects through `yaml` alone.
    const floorStart = process.hrtime.bigint();
    const floorText = json.map((o) => stringify(o)).join('---\n');
    floorTimes.push(Number(process.hrtime.bigint() - floorStart) / 1e6);
    if (floorText.length !== yamlText.length) throw new Error('floor and synth serialized different objects');
  }
  return { ...c, objects, synthMs: median(synthTimes), floorMs: median(floorTimes), peakRssMb: process.resourceUsage().maxRSS / 1024 };
}

/** Every size, each in a fresh child process. */
export async function benchSynth(): Promise<SynthResult[]> {
  const results: SynthResult[] = [];
  for (const c of SYNTH_CASES) {
    results.push(
      await new Promise<SynthResult>((resolve, reject) => {
        const child = fork(__filename, ['--case', JSON.stringify(c)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        child.once('message', (m) => resolve(m as SynthResult));
        child.once('exit', (code) => code !== 0 && reject(new Error(`synth bench for ${JSON.stringify(c)} exited ${code}`)));
      }),
    );
  }
  return results;
}

export function reportSynth(results: SynthResult[]): string[] {
  const lines = ['synth: pools tasks objects | synth ms | yaml-only ms | ratio | ms/object | peak RSS MB'];
  for (const r of results) {
    lines.push(
      `synth: ${String(r.pools).padStart(5)} ${String(r.tasks).padStart(5)} ${String(r.objects).padStart(7)} | ${r.synthMs.toFixed(1).padStart(8)} | ` +
        `${r.floorMs.toFixed(1).padStart(12)} | ${(r.synthMs / r.floorMs).toFixed(2).padStart(5)} | ${(r.synthMs / r.objects).toFixed(3).padStart(9)} | ${r.peakRssMb.toFixed(0).padStart(11)}`,
    );
  }
  const first = results[0];
  const last = results[results.length - 1];
  const growth = last.synthMs / last.objects / (first.synthMs / first.objects);
  lines.push(`synth: cost per object, largest vs smallest size: ${growth.toFixed(2)}x (${growth <= 2 ? 'linear' : 'SUPERLINEAR'})`);
  return lines;
}

if (require.main === module && process.argv[2] === '--case') {
  const result = measureSynth(JSON.parse(process.argv[3]));
  process.send!(result, () => process.exit(0));
}
