/**
 * From construct to run: synthesize an AgentTask with the construct library, lay its
 * ConfigMaps out as files the way a kubelet mounts them (one file per key, at the Job's
 * mountPaths, under a temp root), give the runner the Job container's env (secretKeyRefs
 * resolved), and run `paddock run` exactly as the Job does: with the Job's args.
 */
import * as fs from 'fs';
import * as path from 'path';
import { AgentPool, AgentTask, CredentialSecret, Harness, SandboxProfile } from '../../constructs';
import { parseRunArgs } from '../../cli/run';
import { POD_PATHS } from '../../runner/run';
import { GitServer, startGitServer } from '../support/git-server';
import { Capture, DemoRepo, FAKE_AGENT, listFiles, makeDemoRepos, makeTmpDir, readJson, readJsonl } from '../support/runner-fixtures';
import { mountContainer, podRunOptions } from '../support/kubelet';
import { newPlatform, synth } from '../support/synth';
import { run } from '../../runner/run';

let root: string;
let server: GitServer;
let repo: DemoRepo;
const GIT_USER = 'robot';
const GIT_PASSWORD = 'git-token-c2r-93f1';

beforeAll(async () => {
  root = makeTmpDir('paddock-c2r-');
  repo = makeDemoRepos(path.join(root, 'repos', 'private'));
  server = await startGitServer({ root: path.join(root, 'repos'), tls: true, auth: { username: GIT_USER, password: GIT_PASSWORD } });
});

afterAll(async () => {
  await server.close();
  fs.rmSync(root, { recursive: true, force: true });
});

test('a synthesized AgentTask runs from its mounted ConfigMaps', async () => {
  const { chart, platform } = newPlatform();
  const harness = new Harness({
    name: 'fake',
    capability: 'harness.fake',
    image: 'registry.example.com/paddock/fake:1',
    command: [process.execPath, FAKE_AGENT, 'echo', '--model', '{model}', '{prompt}'],
    defaultModel: 'fake-1',
    env: { FAKE_LAYER: 'harness' },
    config: [{ path: '.fake/config.toml', format: 'toml', content: 'sandbox_mode = "danger-full-access"\n[tui]\ntheme = "dark"\n' }],
  });
  const pool = new AgentPool(platform, 'local', { harnesses: [harness], sandbox: SandboxProfile.none(), env: { FAKE_POOL: 'yes' } });
  CredentialSecret.fromSecretName(platform, 'model', 'model-api', ['MODEL_API_KEY']).grantTo(pool, { exposeToAgent: true });
  new AgentTask(platform, 'fix', {
    pool,
    prompt: 'Fix "it"\nand $(nothing) else',
    sources: [{ url: `${server.url}/private/demo.git`, name: 'demo', branch: 'feature', subPath: 'packages/app' }],
    env: { FAKE_LAYER: 'task' },
    config: [{ path: '.fake/config.toml', format: 'toml', content: '[tui]\ntheme = "light"\n' }],
  });
  CredentialSecret.fromSecretName(platform, 'git', 'git-token', ['token']).grantTo(pool, { git: { host: '127.0.0.1', key: 'token', username: GIT_USER } });
  const objects = synth(chart);
  const job = objects.find((o) => o.kind === 'Job') as any;
  const podSpec = job.spec.template.spec;
  const [fetchStep] = podSpec.initContainers;
  const container = podSpec.containers[0];
  // The Job runs `paddock run --phase fetch` in its init container, then `paddock run --phase agent`: the pod's default paths.
  expect(fetchStep.args).toEqual(['run', '--phase', 'fetch']);
  expect(container.args).toEqual(['run', '--phase', 'agent']);

  const secrets = { 'model-api': { MODEL_API_KEY: 'sk-model-from-secret-42' }, 'git-token': { token: GIT_PASSWORD } };
  const pod = path.join(root, 'pod');
  const imageEnv = { PATH: process.env.PATH, GIT_SSL_CAINFO: server.caFile, RUNNER_ONLY: 'not for the agent' };
  const stdout = new Capture();
  const stderr = new Capture();
  const runContainer = async (c: any) => {
    const m = mountContainer(pod, podSpec, c, objects, secrets, imageEnv);
    const parsed = parseRunArgs(c.args.slice(1));
    expect(parsed.local).toBe(false);
    expect(Object.keys(m.mounts)).toEqual(expect.arrayContaining([POD_PATHS.harness, POD_PATHS.pool, POD_PATHS.task, POD_PATHS.home, POD_PATHS.workspace, POD_PATHS.artifacts, POD_PATHS.tmp]));
    try {
      return await run({ ...podRunOptions(m, parsed.options), stdout, stderr });
    } finally {
      m.unmount();
    }
  };
  expect(await runContainer(fetchStep)).toBe(0);
  // The agent's container mounts no git Secret: the token file is gone from its view.
  expect(JSON.stringify(container)).not.toContain('git-token');
  const code = await runContainer(container);
  const at = (p: string) => path.join(pod, p);

  expect(stderr.text).toMatch(/outcome succeeded/);
  expect(code).toBe(0);
  const status = readJson(path.join(at(POD_PATHS.artifacts), 'status.json'));
  expect(status).toMatchObject({ task: 'fix', harness: 'fake', pool: 'local', outcome: 'succeeded', sources: [{ name: 'demo', dir: 'demo/packages/app', commit: repo.featureSha }] });
  expect(readJsonl(path.join(at(POD_PATHS.artifacts), 'results.jsonl'))).toEqual([{ ok: true, files: ['agent-wrote.txt'] }]);
  const report = readJson(path.join(at(POD_PATHS.home), 'report.json'));
  expect(report.args).toEqual(['--model', 'fake-1', 'Fix "it"\nand $(nothing) else']);
  expect(report.cwd).toBe(path.join(at(POD_PATHS.workspace), 'demo/packages/app'));
  expect(report.env).toMatchObject({ FAKE_LAYER: 'task', FAKE_POOL: 'yes', MODEL_API_KEY: 'sk-model-from-secret-42', HOME: at(POD_PATHS.home) });
  expect(report.env.RUNNER_ONLY).toBeUndefined();
  expect(report.env.GIT_SSL_CAINFO).toBeUndefined();
  expect(fs.readFileSync(path.join(at(POD_PATHS.home), '.fake/config.toml'), 'utf8')).toBe('sandbox_mode = "danger-full-access"\n\n[tui]\ntheme = "light"\n');
  expect(fs.existsSync(path.join(report.cwd, 'agent-wrote.txt'))).toBe(true);
  // The git token went to the git server, and nowhere the agent can look.
  expect(server.requests.some((q) => q.basicAuth === `${GIT_USER}:${GIT_PASSWORD}`)).toBe(true);
  const seen = [JSON.stringify(report), ...listFiles(pod).map((f) => fs.readFileSync(path.join(pod, f), 'utf8'))].join('\n');
  expect(seen).not.toContain(GIT_PASSWORD);
});
