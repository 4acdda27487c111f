/**
 * Worker images, built and proven (`npm run test:images`; see worker-images/README.md).
 *
 * Builds the runner base and the codex image with podman (base rootfs from debootstrap,
 * kept between runs), then runs the codex image the way the synthesized agent pod runs
 * it: an AgentTask synthesized by the constructs, its ConfigMaps laid out as the kubelet
 * mounts them, the Job container's uid/gid, read-only root, tmpfs emptyDirs, no
 * capabilities, no privilege escalation, env and args, in a network namespace of its own
 * that only holds a loopback interface, with the mock model server and an HTTPS git server
 * on that loopback. The runner clones the source, the real codex CLI makes its tool call,
 * and the test reads the result from the /workspace and /artifacts mounts.
 *
 * PADDOCK_IMAGE_PRESETS=all (or a list such as codex,opencode) builds and runs more
 * presets the same way; the default is codex.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Duration } from 'cdk8s';
import { AgentPool, AgentTask, CredentialSecret, Harness, SandboxProfile } from '../../constructs';
import { MOCK_PROVIDER } from '../support/mock-provider';
import { CleanupStack, createNetns } from '../support/netns';
import { makeDemoRepos, makeTmpDir, readJson, readJsonl } from '../support/runner-fixtures';
import { find, newPlatform, synth } from '../support/synth';
import { stableJson } from '../../core/stable-json';
import {
  buildImages,
  compileMockServer,
  formatMeasures,
  imageOf,
  inImage,
  measureImages,
  missingPrerequisites,
  podman,
  podmanAsync,
  podmanRunArgs,
  runImage,
  Preset,
  PRESETS,
  ROOT,
  startGitInNetns,
  startMockInNetns,
  WORKER_IMAGES,
} from './support/images';

const RUNTIME = JSON.parse(fs.readFileSync(path.join(WORKER_IMAGES, 'runtime.json'), 'utf8'));
const AGENTS_PINS: Record<string, string> = (() => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'test', 'agents', 'package.json'), 'utf8'));
  return { ...pkg.dependencies, ...pkg.optionalDependencies };
})();

/** Each preset's image facts; how its task points the CLI at the mock is MOCK_PROVIDER[preset]. */
interface Recipe {
  readonly exe: string;
  /** A config file (relative to HOME) the tool call copies into the workspace, to check the merged layers. */
  readonly configPath?: string;
  /**
   * The CLI lets the tool call touch paths outside the workdir (the read-only root probe).
   * @default true
   */
  readonly outsideWorkdir?: boolean;
}

const RECIPES: Record<Preset, Recipe> = {
  codex: { exe: 'codex', configPath: '.codex/config.toml' },
  'claude-code': { exe: 'claude' },
  'gemini-cli': { exe: 'gemini', configPath: '.gemini/settings.json' },
  opencode: { exe: 'opencode', configPath: '.config/opencode/opencode.json' },
  copilot: { exe: 'copilot' },
};

/** The tool-result part of a model request (whatever the wire protocol), for failure messages. */
function toolResultOf(body: any): unknown {
  if (!body) return null;
  const items: unknown[] = body.messages ?? body.input ?? body.contents ?? [];
  return items.filter((m: any) => JSON.stringify(m).match(/tool_result|function_call_output|functionResponse|"role":"tool"/));
}

function requestedPresets(): Preset[] {
  const raw = (process.env.PADDOCK_IMAGE_PRESETS ?? 'codex').trim();
  if (raw === 'all') return [...PRESETS];
  const names = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) {
    if (!(PRESETS as readonly string[]).includes(n)) throw new Error(`PADDOCK_IMAGE_PRESETS: unknown preset "${n}"; use ${PRESETS.join(', ')} or all`);
  }
  return names as Preset[];
}

const presets = requestedPresets();
const root = makeTmpDir('paddock-images-');

beforeAll(() => {
  const missing = missingPrerequisites();
  if (missing) throw new Error(missing);
  const { seconds } = buildImages(['runner', 'controller', ...presets], path.join(root, 'build.log'));
  // eslint-disable-next-line no-console
  console.log(`worker-images/build.sh --only runner,controller,${presets.join(',')}: ${seconds.toFixed(1)} s`);
});

describe('images.json is the one place for image names', () => {
  test('build.sh tagged every image with the reference the constructs use by default', () => {
    expect(podman(['image', 'exists', imageOf('runner')]).code).toBe(0);
    const { chart, platform } = newPlatform();
    const controller = synth(chart).find((o) => o.kind === 'Deployment' && o.metadata?.name === platform.controllerServiceName) as any;
    expect(controller.spec.template.spec.containers[0].image).toBe(imageOf('controller'));
    expect(podman(['image', 'exists', imageOf('controller')]).code).toBe(0);
    for (const preset of presets) {
      const ref = Harness.fromPreset(preset).image;
      expect(ref).toBe(imageOf(preset));
      expect(podman(['image', 'exists', ref]).code).toBe(0);
    }
  });

  test('no Dockerfile or script repeats a registry, image name or tag (build.sh reads them from images.json)', () => {
    const catalog = JSON.parse(fs.readFileSync(path.join(WORKER_IMAGES, 'images.json'), 'utf8'));
    const literals = [catalog.registry, ...Object.values(catalog.images as Record<string, string>).map((name) => `${name}:`), `:${catalog.tag}`];
    const files = [
      'build.sh',
      'measure.sh',
      'setup-podman.sh',
      'bake-defaults.js',
      'measure-payload.js',
      'runner/Dockerfile',
      'harness/Dockerfile',
    ];
    const offending = files.flatMap((file) =>
      fs
        .readFileSync(path.join(WORKER_IMAGES, file), 'utf8')
        .split('\n')
        .filter((line) => !/^\s*(#|\/\/|\*|\/\*\*)/.test(line))
        .filter((line) => literals.some((l) => line.includes(l)))
        .map((line) => `${file}: ${line.trim()}`),
    );
    expect(offending).toEqual([]);
  });

  test('each image pins its CLI at the version test/agents measured', () => {
    for (const preset of PRESETS) {
      const pkg = JSON.parse(fs.readFileSync(path.join(WORKER_IMAGES, preset, 'package.json'), 'utf8'));
      const lock = JSON.parse(fs.readFileSync(path.join(WORKER_IMAGES, preset, 'package-lock.json'), 'utf8'));
      const deps = Object.entries(pkg.dependencies as Record<string, string>);
      expect(deps).toHaveLength(1);
      const [name, version] = deps[0];
      expect({ preset, name, version }).toEqual({ preset, name, version: AGENTS_PINS[name] });
      expect(lock.packages[`node_modules/${name}`].version).toBe(version);
    }
  });
});

describe('the runner base image', () => {
  const image = imageOf('runner');

  test('runs the paddock CLI as uid 10001 with HOME /home/agent, from /workspace', () => {
    const inspect = JSON.parse(podman(['image', 'inspect', image]).stdout)[0].Config;
    expect(inspect.User).toBe('10001:10001');
    expect(inspect.Env).toContain('HOME=/home/agent');
    expect(inspect.Entrypoint).toEqual(['/usr/local/bin/node', '/opt/paddock/bin/paddock.js']);
    expect(inspect.Cmd).toEqual(['run']);
    expect(inspect.WorkingDir).toBe('/workspace');
    expect(inImage(image, ['paddock', 'run', '--help'])).toMatch(/^Usage: paddock run/);
  });

  test('holds Node, git and the package, and nothing to build with', () => {
    const facts = Object.fromEntries(
      inImage(image, [
        'bash',
        '-c',
        [
          'echo "id=$(id -u):$(id -g)"',
          'echo "node=$(node --version)"',
          'echo "git=$(git --version)"',
          'echo "certs=$(test -s /etc/ssl/certs/ca-certificates.crt && echo yes)"',
          'echo "tools=$(for t in npm npx gcc cc g++ make python3 curl wget; do command -v $t; done | tr "\\n" " ")"',
          'echo "apt_lists=$(find /var/lib/apt/lists -type f | wc -l)"',
          'echo "docs=$(find /usr/share/doc /usr/share/man /usr/share/info -type f ! -name copyright | wc -l)"',
          'echo "npm_caches=$(find / -xdev \\( -name _cacache -o -name .npm \\) -print 2>/dev/null | wc -l)"',
          'echo "package=$(ls /opt/paddock | tr "\\n" " ")"',
          'echo "package_worker_images=$(ls /opt/paddock/worker-images | tr "\\n" " ")"',
          'echo "owners=$(stat -c %n:%u:%g /home/agent /workspace /artifacts | tr "\\n" " ")"',
          'echo "tmp=$(stat -c %a /tmp)"',
        ].join('\n'),
      ])
        .trim()
        .split('\n')
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1).trim()]),
    );
    expect(facts).toEqual({
      id: '10001:10001',
      node: `v${RUNTIME.node.version}`,
      git: expect.stringMatching(/^git version 2\./),
      certs: 'yes',
      tools: '',
      apt_lists: '0',
      docs: '0',
      npm_caches: '0',
      package: 'LICENSE bin lib node_modules package.json policy templates worker-images',
      package_worker_images: 'images.json',
      owners: '/home/agent:10001:10001 /workspace:10001:10001 /artifacts:10001:10001',
      tmp: '1777',
    });
  });
});

describe('the Kubernetes client is only in the controller image', () => {
  const hasClient = (image: string) => inImage(image, ['bash', '-c', 'test -d /opt/paddock/node_modules/@kubernetes/client-node && echo yes || echo no']).trim();

  test('agent images leave it out; the controller image has it and loads it', () => {
    expect(hasClient(imageOf('runner'))).toBe('no');
    expect(hasClient(imageOf('controller'))).toBe('yes');
    // The controller's client loads in its image (there is no cluster here to start it against).
    const load = "import('/opt/paddock/node_modules/@kubernetes/client-node/dist/index.js').then((k8s) => console.log(typeof k8s.KubeConfig))";
    expect(inImage(imageOf('controller'), ['node', '-e', load]).trim()).toBe('function');
    // The agent image says what is missing rather than failing obscurely.
    const agent = runImage(imageOf('runner'), ['controller', '--namespace', 'x']);
    expect(agent.code).not.toBe(0);
    expect(agent.stdout + agent.stderr).toMatch(/paddock controller needs @kubernetes\/client-node, an optional dependency of paddock/);
  });
});

describe.each(presets)('the %s image', (preset) => {
  const image = imageOf(preset);
  const recipe = RECIPES[preset];
  const provider = MOCK_PROVIDER[preset];

  test('has the pinned CLI on PATH and the preset defaults baked in, identical to the harness spec', () => {
    const pinned = Object.values(JSON.parse(fs.readFileSync(path.join(WORKER_IMAGES, preset, 'package.json'), 'utf8')).dependencies)[0] as string;
    expect(inImage(image, [recipe.exe, '--version'])).toContain(pinned);
    const spec = Harness.fromPreset(preset).spec;
    const dir = `/etc/paddock/defaults/${preset}`;
    expect(inImage(image, ['cat', `${dir}/harness.json`])).toBe(stableJson(spec));
    for (const file of spec.config?.files ?? []) {
      expect(inImage(image, ['cat', `${dir}/${file.base ?? 'home'}/${file.path}`])).toBe(file.content);
    }
    // The CLI's tools are there and nothing to build with.
    expect(inImage(image, ['bash', '-c', 'for t in npm npx gcc make python3; do command -v $t; done; true']).trim()).toBe('');
  });

  test('runs a synthesized AgentTask like the pod: loopback only, uid 10001, read-only root, the real CLI', async () => {
    const dir = makeTmpDir(`paddock-img-${preset}-`);
    const secret = `sk-image-${preset}-0123456789abcdef`;
    const repo = makeDemoRepos(path.join(dir, 'repos'));
    const cleanup = new CleanupStack();
    const container = `paddock-images-test-${process.pid}-${preset}`;
    try {
      // A namespace with only `lo`: the container joins it; the servers listen on its loopback.
      const ns = createNetns(`img-${preset}`);
      cleanup.add('netns', () => ns.destroy());
      const proof = 'written by the agent tool call in the image';
      const shellCommand = [
        `echo '${proof}' > proof.txt`,
        'env > agent-env.txt',
        'id > agent-id.txt',
        // The root directory, without naming an absolute path (opencode refuses those outside the workdir).
        ...(recipe.outsideWorkdir === false ? [] : ['(touch "$HOME/../../probe" 2>/dev/null && echo writable || echo read-only) > rootfs.txt']),
        ...(recipe.configPath ? [`cp "$HOME/${recipe.configPath}" agent-config.txt`] : []),
      ].join(' && ');
      const finalText = 'Done: wrote proof.txt.\n\n```result\n{"status": "ok", "file": "proof.txt"}\n```\n';
      const mock = await startMockInNetns(ns, compileMockServer(dir), { shellCommand, finalText });
      cleanup.add('mock model server', () => mock.stop());
      const git = await startGitInNetns(ns, path.join(dir, 'repos'));
      cleanup.add('git server', () => git.stop());
      const ca = path.join(dir, 'git-ca.pem');
      fs.copyFileSync(git.caFile, ca);
      fs.chmodSync(ca, 0o644);

      // The construct side: a pool with this preset, a credential, a task pointing the CLI at the mock.
      const { chart, platform } = newPlatform();
      const pool = new AgentPool(platform, preset, { harnesses: [Harness.fromPreset(preset)], sandbox: SandboxProfile.none() });
      // The key in the agent's env (exposeToAgent): this test is about the image running the pod;
      // the model gateway's path with every real CLI is test/runner/model-gateway*.test.ts.
      CredentialSecret.fromSecretName(platform, 'model', 'model-api', [provider.secretEnv]).grantTo(pool, { exposeToAgent: true });
      const task = new AgentTask(platform, 'image-e2e', {
        pool,
        model: provider.model,
        prompt: 'Create proof.txt, then report with a result block.',
        sources: [{ url: git.repoUrl('demo'), name: 'demo', branch: 'main' }],
        timeout: Duration.seconds(180),
        env: provider.env(mock.url),
        config: provider.config(mock.url),
      });
      const objects = synth(chart);
      const job = find(objects, 'Job', task.jobName);
      const pod = job.spec.template.spec;
      expect(pod.containers[0].image).toBe(image);
      // The Job's two steps: the fetch init container, then the agent's container.
      expect(pod.initContainers.map((c: any) => [c.name, c.image, c.args])).toEqual([['fetch', image, ['run', '--phase', 'fetch']]]);
      expect(pod.containers[0].args).toEqual(['run', '--phase', 'agent']);
      const configMaps = Object.fromEntries(objects.filter((o) => o.kind === 'ConfigMap').map((o) => [o.metadata!.name as string, (o as any).data]));
      const workspace = path.join(dir, 'pod', 'workspace');
      const artifacts = path.join(dir, 'pod', 'artifacts');
      const runArgs = (step: string) => podmanRunArgs(pod, {
        container: step,
        name: `${container}-${step}`,
        network: `ns:/run/netns/${ns.name}`,
        volumesDir: path.join(dir, 'volumes'),
        configMaps,
        secrets: { 'model-api': { [provider.secretEnv]: secret } },
        hostDirs: { '/workspace': workspace, '/artifacts': artifacts },
        // Test plumbing, not part of the pod: trust the test git server's self-signed certificate.
        extraEnv: { GIT_SSL_CAINFO: '/run/paddock-test/git-ca.pem' },
        extraMounts: [`${ca}:/run/paddock-test/git-ca.pem:ro`],
      });
      for (const step of ['fetch', pod.containers[0].name]) cleanup.add(`container ${step}`, () => void podman(['rm', '--force', '--ignore', `${container}-${step}`]));

      const started = Date.now();
      const fetched = await podmanAsync(runArgs('fetch'), 300_000);
      if (fetched.code !== 0) throw new Error(`the fetch step (podman run ${image} run --phase fetch) exited ${fetched.code}\n--- stdout\n${fetched.stdout}\n--- stderr\n${fetched.stderr}`);
      const r = await podmanAsync(runArgs(pod.containers[0].name), 300_000);
      const seconds = (Date.now() - started) / 1000;
      const statusFile = path.join(artifacts, 'status.json');
      if (r.code !== 0 || !fs.existsSync(statusFile)) {
        throw new Error(`podman run ${image} exited ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
      }
      // eslint-disable-next-line no-console
      console.log(`${preset}: podman run (container start, git clone, agent round trip) ${seconds.toFixed(1)} s`);

      const requests = await mock.requests();
      const workdir = path.join(workspace, 'demo');
      if (!fs.existsSync(path.join(workdir, 'proof.txt'))) {
        const finalRequest = requests.find((q) => q.kind === 'final');
        throw new Error(
          `the ${preset} tool call wrote no proof.txt; status ${fs.readFileSync(statusFile, 'utf8')}\n` +
            `--- the request that carried the tool result\n${JSON.stringify(toolResultOf(finalRequest?.body)).slice(0, 3000)}\n--- stderr\n${r.stderr.slice(-3000)}`,
        );
      }
      const status = readJson(statusFile);
      expect(status).toMatchObject({
        task: 'image-e2e',
        harness: preset,
        pool: preset,
        outcome: 'succeeded',
        exitCode: 0,
        counts: { results: 1, parseErrors: 0 },
        sources: [{ name: 'demo', dir: 'demo', commit: repo.mainSha }],
      });
      expect(readJsonl(path.join(artifacts, 'results.jsonl'))).toEqual([{ status: 'ok', file: 'proof.txt' }]);
      // Written by the runner as uid 10001 into the mounted emptyDirs.
      expect(fs.statSync(statusFile).uid).toBe(10001);
      expect(fs.readFileSync(path.join(workdir, 'proof.txt'), 'utf8')).toBe(`${proof}\n`);
      expect(fs.statSync(path.join(workdir, 'proof.txt')).uid).toBe(10001);
      expect(fs.readFileSync(path.join(workdir, 'README.md'), 'utf8')).toBe('# demo v2\n');
      // The tool call ran as the agent user, on a read-only root, with the runner's env allowlist.
      expect(fs.readFileSync(path.join(workdir, 'agent-id.txt'), 'utf8')).toMatch(/^uid=10001\(agent\) gid=10001\(agent\)/);
      if (recipe.outsideWorkdir !== false) expect(fs.readFileSync(path.join(workdir, 'rootfs.txt'), 'utf8')).toBe('read-only\n');
      const toolEnv = fs.readFileSync(path.join(workdir, 'agent-env.txt'), 'utf8');
      expect(toolEnv).toMatch(/^HOME=\/home\/agent$/m);
      expect(toolEnv).not.toMatch(/^GIT_SSL_CAINFO=/m);
      expect(toolEnv).not.toMatch(/^PADDOCK_POOL=/m);
      if (recipe.configPath) {
        // The preset's default layer (the same as baked into the image) merged with the task's.
        const merged = fs.readFileSync(path.join(workdir, 'agent-config.txt'), 'utf8');
        if (preset === 'codex') {
          expect(merged).toMatch(/^sandbox_mode = "danger-full-access"$/m);
          expect(merged).toMatch(/^approval_policy = "never"$/m);
          expect(merged).toContain(`base_url = "${mock.url}/v1"`);
        } else {
          expect(merged.length).toBeGreaterThan(0);
        }
      }
      // The CLI talked to the mock on the namespace's loopback, with the granted credential.
      expect(requests.some((q) => q.kind === 'tool_call')).toBe(true);
      expect(requests.some((q) => q.kind === 'final')).toBe(true);
      expect(requests.some((q) => JSON.stringify(q.headers).includes(secret))).toBe(true);
      // The runner fetched the source over HTTPS from the namespace's loopback.
      expect((await git.requests()).some((q) => q.url.includes('git-upload-pack') && q.status === 200)).toBe(true);
      // No artifact or log leaks the credential.
      const leaked = fs.readdirSync(artifacts).filter((f) => fs.readFileSync(path.join(artifacts, f), 'utf8').includes(secret));
      expect(leaked).toEqual([]);
      expect(r.stdout + r.stderr).not.toContain(secret);
    } finally {
      await cleanup.run();
    }
  });
});

test('image sizes against their unavoidable payload (CLI as installed + Node + git)', () => {
  const rows = measureImages([imageOf('runner'), ...presets.map(imageOf)]);
  // eslint-disable-next-line no-console
  console.log(`image sizes (MB = 10^6 bytes; target ratio <= 1.2):\n${formatMeasures(rows)}`);
  for (const row of rows) {
    expect(row.node).toBeGreaterThan(50e6);
    expect(row.git).toBeGreaterThan(5e6);
    expect(row.gitPackages).toContain('git');
  }
  const codex = rows.find((r) => r.image === imageOf('codex'));
  if (codex) {
    // A preset image adds exactly its CLI to the runner: no stray layers, caches or copies.
    const runner = rows.find((r) => r.image === imageOf('runner'))!;
    expect(codex.size - runner.size).toBeLessThan(codex.cli * 1.01 + 1e6);
    expect(codex.ratio).toBeLessThanOrEqual(1.2);
  }
});
