/**
 * `paddock local` end to end: a platform synthesized by the same code path as
 * `npm run synth` (buildPlatform -> cdk8s App.synth() -> *.k8s.yaml), whose declared
 * task fetches a repository from a loopback HTTPS git server and whose Claude Code
 * pool's task env points the real `claude` CLI at the loopback mock model server.
 * The built CLI (`paddock local`) runs the controller and a warm worker process;
 * the task succeeds, and its results are where the output says.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { App, Chart } from 'cdk8s';
import { buildPlatform } from '../../stacks/platform-definition';
import { examplePlatform } from '../../stacks/example-platform';
import { loadPlatform, readManifests } from '../../controller/local';
import { startGitServer } from '../support/git-server';
import { startMockModelServer } from '../support/mock-model-server';
import { makeDemoRepos, makeTmpDir } from '../support/runner-fixtures';
import { AGENTS_BIN, describeIfInstalled, FINAL_TEXT, PROOF_FILE, PROOF_TEXT } from '../runner/support/agent-e2e';

jest.setTimeout(240_000);

const PADDOCK = path.resolve(__dirname, '..', '..', 'bin', 'paddock.js');

function synthTo(outdir: string, def: Parameters<typeof buildPlatform>[2]): void {
  const app = new App({ outdir });
  const chart = new Chart(app, 'paddock', { disableResourceNameHashes: true });
  buildPlatform(chart, 'platform', def);
  app.synth();
}

describe('paddock local reads the synthesized example platform', () => {
  test('finds its pools and declared tasks; pools become warm, the cluster egress proxy is dropped', () => {
    const dir = makeTmpDir('paddock-dist-');
    synthTo(dir, examplePlatform);
    const { tasks, pools, notes, store } = loadPlatform(readManifests(dir));
    expect(tasks.sort()).toEqual(['review-spoon-knife', 'summarize-readme']);
    expect(pools.sort()).toEqual(['claude', 'codex']);
    const pool = JSON.parse((store.list('ConfigMap').find((c) => c.metadata.name === 'pool-codex')!.data as any)['pool.json']);
    expect(pool.mode).toBe('warm');
    expect(pool.egress).toBeUndefined();
    expect(notes.join('\n')).toMatch(/egress proxy .* exists only in the cluster/);
    // Declared Jobs are not loaded: locally nothing would run them.
    expect(store.list('Job')).toEqual([]);
    expect(() => loadPlatform(readManifests(dir), ['nope'])).toThrow(/no declared task "nope"; declared: summarize-readme, review-spoon-knife/);
  });
});

describeIfInstalled('claude')('paddock local with the real Claude Code CLI', () => {
  test('runs the declared task end to end against the mock model server', async () => {
    const root = makeTmpDir('paddock-local-');
    makeDemoRepos(path.join(root, 'repos'));
    const git = await startGitServer({ root: path.join(root, 'repos'), tls: true });
    const mock = await startMockModelServer({ shellCommand: `echo '${PROOF_TEXT}' > ${PROOF_FILE}`, finalText: FINAL_TEXT });
    const secret = 'sk-ant-local-e2e-0123456789abcdef';
    try {
      const dist = path.join(root, 'dist');
      synthTo(dist, {
        namespace: 'paddock',
        credentials: [{ secretName: 'anthropic-api', keys: ['ANTHROPIC_API_KEY'], grants: { claude: {} } }],
        pools: [{ name: 'claude', harnesses: ['claude-code'], mode: 'warm', replicas: 1, sandbox: { type: 'gvisor' } }],
        tasks: [
          {
            name: 'local-e2e',
            pool: 'claude',
            model: 'claude-mock',
            prompt: `Create ${PROOF_FILE}, then report with a result block.`,
            sources: [{ name: 'repo', url: git.repoUrl('demo'), branch: 'main' }],
            env: { ANTHROPIC_BASE_URL: mock.url },
            timeoutMinutes: 2,
          },
        ],
      });
      expect(fs.readdirSync(dist)).toEqual(['paddock.k8s.yaml']);
      const out = path.join(root, 'out');
      const child = spawn(process.execPath, [PADDOCK, 'local', '--dir', dist, '--workers', '1', '--out', out, '--timeout', '200'], {
        cwd: root,
        env: { PATH: [AGENTS_BIN, process.env.PATH].join(path.delimiter), HOME: root, ANTHROPIC_API_KEY: secret, GIT_SSL_CAINFO: git.caFile! },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
      const debug = `--- stdout\n${stdout}\n--- stderr\n${stderr}`;
      if (code !== 0) throw new Error(`paddock local exited ${code}\n${debug}`);
      // Two loopback listeners, as in the cluster: the workers lease from the worker lease API.
      const ports = /controller: task API on http:\/\/127\.0\.0\.1:(\d+), worker lease API on http:\/\/127\.0\.0\.1:(\d+)/.exec(stdout);
      expect(ports).not.toBeNull();
      expect(ports![1]).not.toBe(ports![2]);
      expect(stderr).toContain(`pool claude: leasing from http://127.0.0.1:${ports![2]}`);
      expect(stdout).toMatch(/leased by worker claude-1/);
      const line = /task local-e2e: Succeeded \(succeeded\) after 1 attempt\(s\), 1 result\(s\); results: (\S+)/.exec(stdout);
      expect(line).not.toBeNull();
      const resultsDir = line![1];
      expect(fs.readFileSync(path.join(resultsDir, 'results.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))).toEqual([{ status: 'ok', file: 'proof.txt' }]);
      expect(JSON.parse(fs.readFileSync(path.join(resultsDir, 'status.json'), 'utf8'))).toMatchObject({ outcome: 'succeeded', task: 'local-e2e', pool: 'claude', harness: 'claude-code' });
      // The agent's tool call ran in the checkout of the loopback repository (the worker kept its directory).
      const work = path.join(out, 'work', 'claude-1');
      const runDir = fs.readdirSync(work).find((d) => d.startsWith('local-e2e-'))!;
      expect(fs.readFileSync(path.join(work, runDir, 'workspace', 'repo', PROOF_FILE), 'utf8')).toBe(`${PROOF_TEXT}\n`);
      expect(fs.readFileSync(path.join(work, runDir, 'workspace', 'repo', 'README.md'), 'utf8')).toMatch(/demo/);
      // The real CLI talked to the mock, with the pool's credential, which no output shows.
      expect(mock.requests.some((q) => q.kind === 'tool_call')).toBe(true);
      expect(mock.requests.some((q) => q.kind === 'final')).toBe(true);
      expect(mock.requests.some((q) => JSON.stringify(q.headers).includes(secret))).toBe(true);
      expect(stdout + stderr).not.toContain(secret);
      expect(git.requests.some((r) => r.url.includes('demo.git'))).toBe(true);
    } finally {
      await mock.close();
      await git.close();
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
