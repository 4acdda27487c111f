/**
 * The runner's overhead: wall time of `paddock run` (a spawned process: spec
 * validation, git fetch with a scrubbed env, config layers, exec, redaction,
 * artifacts) for a task with a repository on a loopback git server and a trivial
 * agent (`echo {prompt}`), against a plain shell script doing the same steps
 * (`git clone --depth 1` + exec) spawned the same way, in the same run.
 * Interleaved iterations, medians. Target: overhead < max(10% of the baseline, 150 ms).
 */
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { startGitServer } from './git-http-server';

export interface RunnerBenchResult {
  readonly iterations: number;
  /** Median wall time of `paddock run`, ms. */
  readonly runnerMs: number;
  /** Median wall time of the shell-script baseline, ms. */
  readonly baselineMs: number;
  readonly ratio: number;
  readonly overheadMs: number;
  /** max(10% of the baseline, 150 ms) */
  readonly budgetMs: number;
  readonly withinTarget: boolean;
  /** Medians of the runner's own phase timings (status.json), ms. */
  readonly phases: Record<string, number>;
}

const BIN = path.join(__dirname, '..', '..', 'bin', 'paddock.js');
const FILES_IN_REPO = 200;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function git(cwd: string, ...args: string[]): void {
  execFileSync('git', args, {
    cwd,
    stdio: 'ignore',
    env: {
      ...process.env,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_AUTHOR_NAME: 'bench',
      GIT_AUTHOR_EMAIL: 'bench@paddock.invalid',
      GIT_COMMITTER_NAME: 'bench',
      GIT_COMMITTER_EMAIL: 'bench@paddock.invalid',
    },
  });
}

/** A bare repository with a few hundred small files. */
function makeRepo(root: string): void {
  const work = path.join(root, 'work');
  fs.mkdirSync(work, { recursive: true });
  git(work, 'init', '-q', '-b', 'main');
  for (let i = 0; i < FILES_IN_REPO; i++) {
    const dir = path.join(work, 'src', `mod${i % 10}`);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `file${i}.ts`), `export const value${i} = ${i};\n`.repeat(20));
  }
  git(work, 'add', '-A');
  git(work, 'commit', '-q', '-m', 'bench');
  fs.mkdirSync(path.join(root, 'repos'));
  git(root, 'clone', '-q', '--bare', work, path.join(root, 'repos', 'bench.git'));
}

function timeSpawn(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      if (code !== 0) reject(new Error(`${argv.join(' ')} exited ${code}:\n${stderr}`));
      else resolve(ms);
    });
  });
}

export async function benchRunner(iterations = 11): Promise<RunnerBenchResult> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-bench-runner-'));
  makeRepo(root);
  // https: task specs accept only https:// sources (policy/schemas/task.schema.json).
  const server = await startGitServer({ root: path.join(root, 'repos'), tls: true });
  try {
    const url = server.repoUrl('bench');
    const prompt = 'Summarize the repository';
    const specs = path.join(root, 'specs');
    fs.mkdirSync(specs);
    fs.writeFileSync(
      path.join(specs, 'task.json'),
      JSON.stringify({
        apiVersion: 'paddock.dev/v1alpha1',
        kind: 'Task',
        name: 'bench',
        pool: 'bench',
        harness: 'echo',
        prompt,
        sources: [{ name: 'repo', type: 'git_https', url, branch: 'main', depth: 1 }],
      }),
    );
    fs.writeFileSync(
      path.join(specs, 'harness.json'),
      JSON.stringify({
        apiVersion: 'paddock.dev/v1alpha1',
        kind: 'Harness',
        name: 'echo',
        capability: 'harness.echo',
        command: ['echo', '{prompt}'],
        promptVia: 'argv',
        results: { from: 'stdout' },
      }),
    );
    const script = path.join(root, 'baseline.sh');
    fs.writeFileSync(script, '#!/bin/sh\nset -e\ngit clone --quiet --depth 1 --branch main -- "$1" "$2"\ncd "$2"\nexec echo "$3"\n', { mode: 0o755 });
    const env = { PATH: process.env.PATH, HOME: root, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', GIT_SSL_CAINFO: server.caFile };

    const runner: number[] = [];
    const baseline: number[] = [];
    const phases: Record<string, number[]> = {};
    // One warm-up each (page cache, git's first start), then interleaved iterations.
    for (let i = -1; i < iterations; i++) {
      const dir = path.join(root, `run-${i + 1}`);
      const b = await timeSpawn(['sh', script, url, path.join(dir, 'baseline'), prompt], env);
      const r = await timeSpawn(
        [
          process.execPath,
          BIN,
          'run',
          '--task-dir',
          specs,
          '--harness',
          path.join(specs, 'harness.json'),
          '--no-pool',
          '--workspace',
          path.join(dir, 'workspace'),
          '--home',
          path.join(dir, 'home'),
          '--artifacts',
          path.join(dir, 'artifacts'),
          '--tmp',
          path.join(dir, 'tmp'),
        ],
        env,
      );
      if (i < 0) continue;
      baseline.push(b);
      runner.push(r);
      const status = JSON.parse(fs.readFileSync(path.join(dir, 'artifacts', 'status.json'), 'utf8'));
      if (status.outcome !== 'succeeded') throw new Error(`bench run ${i} did not succeed: ${status.message}`);
      for (const [k, v] of Object.entries(status.timings as Record<string, number>)) (phases[k] ??= []).push(v);
    }
    const runnerMs = median(runner);
    const baselineMs = median(baseline);
    const overheadMs = runnerMs - baselineMs;
    const budgetMs = Math.max(0.1 * baselineMs, 150);
    return {
      iterations,
      runnerMs,
      baselineMs,
      ratio: runnerMs / baselineMs,
      overheadMs,
      budgetMs,
      withinTarget: overheadMs < budgetMs,
      phases: Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, median(v)])),
    };
  } finally {
    await server.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

export function reportRunner(r: RunnerBenchResult): string[] {
  const phases = Object.entries(r.phases)
    .map(([k, v]) => `${k} ${v.toFixed(0)}`)
    .join(', ');
  return [
    `runner: paddock run (process) vs sh script (git clone --depth 1 + exec), ${FILES_IN_REPO}-file repo on loopback HTTP, median of ${r.iterations}`,
    `runner: ${r.runnerMs.toFixed(1)} ms vs ${r.baselineMs.toFixed(1)} ms | ratio ${r.ratio.toFixed(2)} | overhead ${r.overheadMs.toFixed(1)} ms ` +
      `(budget ${r.budgetMs.toFixed(0)} ms: ${r.withinTarget ? 'within target' : 'OVER TARGET'})`,
    `runner: phases inside the runner (status.json, ms): ${phases}`,
  ];
}

if (require.main === module) {
  benchRunner().then(
    (r) => console.log(reportRunner(r).join('\n')),
    (err) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
