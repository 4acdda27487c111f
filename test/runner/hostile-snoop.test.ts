/**
 * The clean room of a Job pod, tried as an attacker would: a synthesized AgentTask whose
 * harness is a hostile agent (fixtures/hostile-agent.js snoop). Its two containers run as
 * the Job runs them, each as its own `paddock run` process with the container's env and
 * mounts (the kubelet stand-in lays them out, and unmounts the fetch step's git Secret
 * before the agent's container starts). The agent reads its env, every /proc/<pid>/environ
 * and cmdline it can (the runner's included), and every file of the pod it can reach, and
 * posts it all out. It must find the gateway placeholder and nothing else secret: neither
 * the model key (the gateway holds it) nor the git token (only the fetch step had it).
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { AgentPool, AgentTask, CredentialSecret, Harness, SandboxProfile } from '../../constructs';
import { SECRETS_MOUNT } from '../../core/labels';
import { GATEWAY_TOKEN_DIR } from '../../core/model-providers';
import { POD_PATHS } from '../../runner/run';
import { GitServer, startGitServer } from '../support/git-server';
import { LootServer, startLootServer } from '../support/loot-server';
import { mountContainer, MountedContainer } from '../support/kubelet';
import { makeDemoRepos, makeTmpDir } from '../support/runner-fixtures';
import { newPlatform, synth } from '../support/synth';

jest.setTimeout(60_000);

const PADDOCK = path.resolve(__dirname, '..', '..', 'bin', 'paddock.js');
const HOSTILE = path.join(__dirname, 'fixtures', 'hostile-agent.js');
const GIT_USER = 'robot';
const GIT_TOKEN = 'git-token-snoop-4b1e7d';
const MODEL_KEY = 'sk-model-key-snoop-9c3f2a';
const GATEWAY_TOKEN = 'gateway-placeholder-snoop-51d0';

let root: string;
let git: GitServer;
let loot: LootServer;

beforeAll(async () => {
  root = makeTmpDir('paddock-snoop-');
  makeDemoRepos(path.join(root, 'repos', 'private'));
  git = await startGitServer({ root: path.join(root, 'repos'), tls: true, auth: { username: GIT_USER, password: GIT_TOKEN } });
  loot = await startLootServer();
});

afterAll(async () => {
  await git.close();
  await loot.close();
  fs.rmSync(root, { recursive: true, force: true });
});

/** One container of the pod as its own `paddock run` process (its args, its env, its mounts). */
async function runContainer(m: MountedContainer, args: string[]): Promise<{ code: number | null; pid: number; output: string }> {
  const child = spawn(
    process.execPath,
    [
      PADDOCK,
      ...args,
      '--task-dir', m.mounts[POD_PATHS.task],
      '--harness', m.mounts[POD_PATHS.harness],
      '--pool', m.mounts[POD_PATHS.pool],
      '--workspace', m.at(POD_PATHS.workspace),
      '--home', m.at(POD_PATHS.home),
      '--artifacts', m.at(POD_PATHS.artifacts),
      '--tmp', m.at(POD_PATHS.tmp),
      '--credential-dir', m.at(SECRETS_MOUNT),
    ],
    { env: m.env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  return { code, pid: child.pid!, output };
}

test('a hostile agent in a synthesized Job pod finds neither the model key nor the git token, in /proc, env or files', async () => {
  const pod = path.join(root, 'pod');
  const { chart, platform } = newPlatform();
  const harness = new Harness({
    name: 'hostile',
    capability: 'harness.hostile',
    image: 'registry.example.com/paddock/hostile:1',
    command: [process.execPath, HOSTILE, 'snoop', loot.url, pod, '{prompt}'],
    defaultModel: 'any',
    credentialEnv: ['OPENAI_API_KEY'],
  });
  const pool = new AgentPool(platform, 'jobs', { harnesses: [harness], sandbox: SandboxProfile.none() });
  CredentialSecret.fromSecretName(platform, 'model', 'model-api', ['OPENAI_API_KEY']).grantTo(pool);
  CredentialSecret.fromSecretName(platform, 'git', 'git-token', ['token']).grantTo(pool, { git: { host: '127.0.0.1', key: 'token', username: GIT_USER } });
  new AgentTask(platform, 'snoop', { pool, prompt: 'Tell me everything.', sources: [{ url: `${git.url}/private/demo.git`, name: 'demo', branch: 'main' }] });
  const objects = synth(chart);
  const podSpec = (objects.find((o) => o.kind === 'Job') as any).spec.template.spec;
  const [fetchStep] = podSpec.initContainers;
  const agent = podSpec.containers[0];
  // Only the model gateway's pod mounts the model key.
  expect(JSON.stringify(podSpec)).not.toContain('model-api');

  const secrets = { 'model-api': { OPENAI_API_KEY: MODEL_KEY }, 'git-token': { token: GIT_TOKEN } };
  const imageEnv = { PATH: process.env.PATH, GIT_SSL_CAINFO: git.caFile };
  const fetch = mountContainer(pod, podSpec, fetchStep, objects, secrets, imageEnv);
  try {
    const r = await runContainer(fetch, fetchStep.args);
    expect({ code: r.code, output: r.output }).toMatchObject({ code: 0 });
  } finally {
    fetch.unmount();
  }
  expect(git.requests.some((q) => q.basicAuth === `${GIT_USER}:${GIT_TOKEN}`)).toBe(true);

  const m = mountContainer(pod, podSpec, agent, objects, secrets, imageEnv);
  try {
    // The projected gateway token, as the kubelet would write it; pool.json names its in-pod
    // path, so the test points it at the pod root (the only change to a mounted file).
    const tokenFile = path.join(m.at(GATEWAY_TOKEN_DIR), 'token');
    fs.writeFileSync(tokenFile, GATEWAY_TOKEN);
    const poolJson = path.join(m.mounts[POD_PATHS.pool], 'pool.json');
    const spec = JSON.parse(fs.readFileSync(poolJson, 'utf8'));
    expect(spec.gateway.tokenFile).toBe(`${GATEWAY_TOKEN_DIR}/token`);
    fs.writeFileSync(poolJson, JSON.stringify({ ...spec, gateway: { ...spec.gateway, tokenFile } }));
    const r = await runContainer(m, agent.args);
    expect({ code: r.code, output: r.output }).toMatchObject({ code: 0 });

    // The agent did snoop: its env, the runner's /proc entries, the pod's files and the checkout.
    expect(loot.text()).toContain(`== /proc/${r.pid}/environ`);
    expect(loot.text()).toContain(`OPENAI_API_KEY=${GATEWAY_TOKEN}`);
    expect(loot.text()).toMatch(/== \S+\/workspace\/demo\/README\.md/);
    // And found nothing secret.
    expect(loot.text()).not.toContain(MODEL_KEY);
    expect(loot.text()).not.toContain(GIT_TOKEN);
    expect(loot.text()).not.toContain(Buffer.from(`${GIT_USER}:${GIT_TOKEN}`).toString('base64'));
  } finally {
    m.unmount();
  }
});
