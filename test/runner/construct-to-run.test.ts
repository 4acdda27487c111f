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
import { Capture, DemoRepo, FAKE_AGENT, makeDemoRepos, makeTmpDir, readJson, readJsonl } from '../support/runner-fixtures';
import { find, newPlatform, synth } from '../support/synth';
import { run } from '../../runner/run';

let root: string;
let server: GitServer;
let repo: DemoRepo;

beforeAll(async () => {
  root = makeTmpDir('paddock-c2r-');
  repo = makeDemoRepos(path.join(root, 'repos'));
  server = await startGitServer({ root: path.join(root, 'repos'), tls: true });
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
  CredentialSecret.fromSecretName(platform, 'model', 'model-api', ['MODEL_API_KEY']).grantTo(pool);
  new AgentTask(platform, 'fix', {
    pool,
    prompt: 'Fix "it"\nand $(nothing) else',
    sources: [{ url: server.repoUrl('demo'), name: 'demo', branch: 'feature', subPath: 'packages/app' }],
    env: { FAKE_LAYER: 'task' },
    config: [{ path: '.fake/config.toml', format: 'toml', content: '[tui]\ntheme = "light"\n' }],
  });
  const objects = synth(chart);
  const job = objects.find((o) => o.kind === 'Job') as any;
  const container = job.spec.template.spec.containers[0];

  // The kubelet's view: each ConfigMap volume mounted at its mountPath, one file per key.
  const pod = path.join(root, 'pod');
  const mounted: Record<string, string> = {};
  for (const volume of job.spec.template.spec.volumes) {
    if (!volume.configMap) continue;
    const mount = container.volumeMounts.find((m: any) => m.name === volume.name);
    const dir = path.join(pod, mount.mountPath);
    fs.mkdirSync(dir, { recursive: true });
    for (const [key, value] of Object.entries(find(objects, 'ConfigMap', volume.configMap.name).data as Record<string, string>)) {
      fs.writeFileSync(path.join(dir, key), value);
    }
    mounted[mount.mountPath] = dir;
  }
  // The Job runs `paddock run` with no flags: the pod's default paths.
  expect(container.args).toEqual(['run']);
  const parsed = parseRunArgs(container.args.slice(1));
  expect(parsed).toEqual({ options: {}, local: false, help: false });
  expect(Object.keys(mounted).sort()).toEqual([POD_PATHS.harness, POD_PATHS.pool, POD_PATHS.task].sort());
  for (const dir of ['home', 'workspace', 'artifacts', 'tmp'] as const) {
    expect(container.volumeMounts.map((m: any) => m.mountPath)).toContain(POD_PATHS[dir]);
  }

  // The container's env, secretKeyRefs resolved like the kubelet does; plus what the image sets.
  const secrets: Record<string, Record<string, string>> = { 'model-api': { MODEL_API_KEY: 'sk-model-from-secret-42' } };
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, GIT_SSL_CAINFO: server.caFile, RUNNER_ONLY: 'not for the agent' };
  for (const e of container.env) {
    env[e.name] = e.value ?? secrets[e.valueFrom.secretKeyRef.name][e.valueFrom.secretKeyRef.key];
  }
  const at = (p: string) => path.join(pod, p);
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await run({
    ...parsed.options,
    task: mounted[POD_PATHS.task],
    harness: mounted[POD_PATHS.harness],
    pool: mounted[POD_PATHS.pool],
    workspace: at(POD_PATHS.workspace),
    home: at(env.HOME ?? POD_PATHS.home),
    artifacts: at(POD_PATHS.artifacts),
    tmp: at(POD_PATHS.tmp),
    env,
    stdout,
    stderr,
  });

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
});
