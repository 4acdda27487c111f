/**
 * The clean room, tried as an attacker would: hostile agents (fixtures/hostile-agent.js)
 * on a real warm worker process (`paddock worker`), leasing from the real controller on
 * loopback, fetching a private repository from a real HTTPS git server.
 *
 * - the worker holds no git token: the controller fetches and hands it the checkout;
 * - an agent that daemonizes (setsid) to read the next task's private checkout is killed
 *   when its run ends, and reads nothing of the next task: with --isolation session (the
 *   run's marker), and with --isolation container (what synthesized workers run, here in
 *   a PID namespace standing in for the container) even when it clears its environment.
 */
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ApiServer, startApi } from '../../controller/api';
import { Controller } from '../../controller/controller';
import { taskConfigMap } from '../../controller/observe';
import { fetchSourcesArchive } from '../../controller/sources-archive';
import { MemoryStore } from '../../controller/store';
import { standardLabels } from '../../core/labels';
import { stableJson } from '../../core/stable-json';
import type { HarnessSpec, PoolSpec, TaskSpec } from '../../policy/specs';
import { GitServer, startGitServer } from '../support/git-server';
import { localToken } from '../controller/support/platform';
import { FAKE_AGENT, isAlive, makeDemoRepos, makeTmpDir, waitFor } from '../support/runner-fixtures';

jest.setTimeout(90_000);

const PADDOCK = path.resolve(__dirname, '..', '..', 'bin', 'paddock.js');
const HOSTILE = path.join(__dirname, 'fixtures', 'hostile-agent.js');
const NS = 'paddock';
const GIT_USER = 'robot';
const GIT_TOKEN = 'git-token-cleanroom-5d2e8a';
const SECRET_TEXT = 'only with credentials';

let root: string;
let git: GitServer;
let caFile: string;

beforeAll(async () => {
  root = makeTmpDir('paddock-cleanroom-');
  makeDemoRepos(path.join(root, 'repos'), { private: true });
  git = await startGitServer({ root: path.join(root, 'repos'), tls: true, auth: { username: GIT_USER, password: GIT_TOKEN } });
  caFile = git.caFile!;
});

afterAll(async () => {
  await git.close();
});

function harness(name: string, command: string[]): HarnessSpec {
  return { apiVersion: 'paddock.dev/v1alpha1', kind: 'Harness', name, capability: 'harness.any', command, promptVia: 'stdin', results: { from: 'stdout' } };
}

function platform(harnesses: HarnessSpec[], passwordFile: string): MemoryStore {
  const store = new MemoryStore(NS);
  const pool: PoolSpec = {
    apiVersion: 'paddock.dev/v1alpha1',
    kind: 'Pool',
    name: 'warm',
    capabilities: ['harness.any'],
    harnesses: harnesses.map((h) => h.name),
    mode: 'warm',
    credentials: { git: [{ host: '127.0.0.1', username: GIT_USER, passwordFile }] },
  };
  store.createSync({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'pool-warm', labels: standardLabels(NS, 'pool', { 'paddock.dev/pool': 'warm' }) }, data: { 'pool.json': stableJson(pool) } });
  for (const h of harnesses) {
    store.createSync({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `harness-${h.name}`, labels: standardLabels(NS, 'harness', { 'paddock.dev/harness': h.name }) }, data: { 'harness.json': stableJson(h) } });
  }
  return store;
}

const task = (name: string, h: string, extra: Partial<TaskSpec> = {}): TaskSpec => ({ apiVersion: 'paddock.dev/v1alpha1', kind: 'Task', name, pool: 'warm', harness: h, prompt: 'go', timeoutSeconds: 30, ...extra });

// container: the synthesized workers' mode. A PID namespace of bubblewrap's stands in for the
// worker's container (bwrap is its PID 1, as a pod's pause/init is), so "every process of this
// uid" is the container's, and the daemon may clear its environment: nothing marks it.
const MODES: Array<['session' | 'container', string, boolean]> = [
  ['session', 'keeps its environment', false],
  ['container', 'clears its environment', true],
];
const CONTAINER = ['--unshare-pid', '--die-with-parent', '--dev-bind', '/', '/', '--proc', '/proc'];
describe.each(MODES)('warm worker, --isolation %s: a daemon that %s', (isolation, _what, cleanEnv) => {
  let controller: Controller | undefined;
  let api: ApiServer | undefined;
  let worker: ChildProcess | undefined;

  afterEach(async () => {
    worker?.kill('SIGKILL');
    await api?.close();
    await controller?.stop();
  });

  test('is killed when its run ends and reads nothing of the next task; the worker never holds the git token', async () => {
    if (isolation === 'container' && spawnSync('bwrap', [...CONTAINER, 'true']).status !== 0) {
      throw new Error('this test needs bubblewrap (apt-get install bubblewrap) with PID namespaces for the stand-in container');
    }
    const dir = makeTmpDir('paddock-cleanroom-run-');
    const secrets = path.join(dir, 'controller-secrets');
    fs.mkdirSync(secrets, { mode: 0o700 });
    fs.writeFileSync(path.join(secrets, 'token'), GIT_TOKEN);
    const exfil = path.join(dir, 'exfil.txt');
    const pidFile = path.join(dir, 'daemon.pid');
    const hostile = harness('hostile', [process.execPath, HOSTILE, 'daemonize', exfil, pidFile, ...(cleanEnv ? ['clean-env'] : [])]);
    const fake = harness('fake', [process.execPath, FAKE_AGENT, 'echo']);
    const store = platform([hostile, fake], path.join(secrets, 'token'));
    const log: string[] = [];
    controller = new Controller({
      store,
      namespace: NS,
      leaseTtlMs: 3000,
      log: (l) => log.push(l),
      fetchSources: (t, p, h) => fetchSourcesArchive(t, p, h, { env: { PATH: process.env.PATH, GIT_SSL_CAINFO: caFile } }),
    });
    await controller.start();
    const token = localToken(dir);
    api = await startApi(controller, { port: 0, host: '127.0.0.1', routes: 'workers', auth: token.auth });
    const out: string[] = [];
    const workerArgv = [PADDOCK, 'worker', '--pool', 'warm', '--controller', api.url, '--id', 'w1', '--work-dir', path.join(dir, 'work'), '--wait', '500', '--isolation', isolation, '--token-file', token.tokenFile];
    // The worker's environment: no git credential of any kind.
    const workerEnv = { PATH: process.env.PATH };
    const [command, ...argv] = isolation === 'container' ? ['bwrap', ...CONTAINER, process.execPath, ...workerArgv] : [process.execPath, ...workerArgv];
    worker = spawn(command, argv, { env: workerEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    worker.stdout!.on('data', (d) => out.push(String(d)));
    worker.stderr!.on('data', (d) => out.push(String(d)));
    const debug = () => `--- controller\n${log.join('\n')}\n--- worker\n${out.join('')}`;
    const finished = (name: string) => waitFor(() => ['Succeeded', 'Failed'].includes(controller!.task(name)?.run?.phase ?? ''), 30_000, 50);

    await store.create(taskConfigMap(NS, task('t1', 'hostile')));
    if (!(await finished('t1'))) throw new Error(`t1 did not finish\n${debug()}`);
    expect(controller.task('t1')?.run?.phase).toBe('Succeeded');
    // The daemon ran past its agent (it wrote its pid), and is gone once the run ended.
    await waitFor(() => fs.existsSync(pidFile), 5000);
    const daemonPid = Number(fs.readFileSync(pidFile, 'utf8'));
    // Seen from this (outer) PID namespace the pid differs in the container's: look for the loop itself.
    const daemonAlive = () => (isolation === 'container' ? daemonProcesses(exfil).length > 0 : isAlive(daemonPid));
    expect(await waitFor(() => !daemonAlive(), 5000)).toBe(true);

    await store.create(taskConfigMap(NS, task('t2', 'fake', { sources: [{ name: 'secret', type: 'git_https', url: `${git.url}/private/secret.git` }] })));
    if (!(await finished('t2'))) throw new Error(`t2 did not finish\n${debug()}`);
    expect(controller.task('t2')?.run).toMatchObject({ phase: 'Succeeded' });
    const status = JSON.parse((store.list('ConfigMap').find((cm) => cm.metadata.name === controller!.task('t2')!.run!.configMap)!.data as any)['status.json']);
    expect(status.sources).toEqual([{ name: 'secret', dir: 'secret', commit: expect.stringMatching(/^[0-9a-f]{40}$/) }]);
    // The controller fetched with the token; the daemon got nothing of t2's checkout.
    expect(git.requests.some((q) => q.basicAuth === `${GIT_USER}:${GIT_TOKEN}`)).toBe(true);
    const stolen = fs.existsSync(exfil) ? fs.readFileSync(exfil, 'utf8') : '';
    expect(stolen).not.toContain(SECRET_TEXT);
    expect(stolen).not.toContain(GIT_TOKEN);
    expect(out.join('')).not.toContain(GIT_TOKEN);
  });
});

/** Processes (any namespace) running the daemon loop that writes to `exfil`. */
function daemonProcesses(exfil: string): number[] {
  return fs
    .readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return isAlive(Number(p)) && fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(exfil);
      } catch {
        return false;
      }
    })
    .map(Number);
}
