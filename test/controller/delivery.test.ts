/**
 * Delivery through the controller: a warm worker (runWorker, in this process) runs a
 * script agent on a source from a real HTTPS git server; its report carries the patch;
 * the run ConfigMap stores it (gzip, binaryData) and the API shows the change and the
 * delivery; the publish step (paddock local's, in the controller's process) pushes it.
 * A hostile agent looks for the push token everywhere it can reach and finds nothing.
 * Bad deliveries are refused at submit, each naming its field.
 */
import * as fs from 'fs';
import * as path from 'path';
import { startApis, ApiServers } from '../../controller/api';
import { Controller } from '../../controller/controller';
import { fetchSourcesArchive } from '../../controller/sources-archive';
import { localDeliverer } from '../../controller/local';
import { runWorker } from '../../runner/worker';
import type { TaskSpec } from '../../policy/specs';
import { GitServer, startGitServer } from '../support/git-server';
import { fakeHarness, git, makeChangeRepo, makeTmpDir } from '../support/runner-fixtures';
import { localToken, memoryPlatform, NS } from './support/platform';
import { writeTerminationMessage } from '../../runner/termination-message';
import { runTask, makeRunDirs } from '../support/runner-fixtures';
import { runName } from '../../controller/reconcile';
import { specHashOf } from '../../core/stable-json';
import { gunzipSync } from 'zlib';

jest.setTimeout(90_000);

const PUSHER = { username: 'robot', password: 'push-token-9e8d7c6b5a4f' };
/** The hostile agent: searches its env, HOME, its run directory and every /proc entry it can read for the token, writes what it found into the repo. */
const HUNT = [
  `T=${PUSHER.password.slice(0, 10)}; T="$T${PUSHER.password.slice(10)}"`,
  'found=""',
  'env | grep -q "$T" && found="$found env"',
  // HOME and the whole run directory (workspace, artifacts, tmp); not this machine's /tmp, which holds the test's own source in jest's cache.
  'grep -rqs "$T" "$HOME" "$PWD/../.." 2>/dev/null && found="$found files"',
  'for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do grep -qsa "$T" "$f" && found="$found $f"; done',
  'echo "found:${found:- nothing}" > hunt.txt',
  'printf "edited\\n" >> edit.txt',
].join('\n');

let root: string;
let server: GitServer;
let base: string;
let bare: string;

beforeAll(async () => {
  root = makeTmpDir('paddock-delivery-');
  base = makeChangeRepo(path.join(root, 'repos'), 'acme/work');
  bare = path.join(root, 'repos', 'acme', 'work.git');
  server = await startGitServer({ root: path.join(root, 'repos'), tls: true, push: PUSHER });
});
afterAll(async () => {
  await server.close();
});

function spec(name: string, extra: Partial<TaskSpec> = {}, script = HUNT): { task: TaskSpec; harness: ReturnType<typeof fakeHarness> } {
  const harness = fakeHarness('script', [script], { name: 'script', capability: 'harness.script' });
  return {
    harness,
    task: {
      apiVersion: 'paddock.dev/v1alpha1',
      kind: 'Task',
      name,
      pool: 'warm',
      harness: 'script',
      prompt: 'hunt',
      timeoutSeconds: 60,
      sources: [{ name: 'work', type: 'git_https', url: server.repoUrl('acme/work'), branch: 'main' }],
      delivery: { branch: `paddock/${name}`, commitMessage: `Deliver ${name}`, author: { name: 'Ada Agent', email: 'ada@example.org' } },
      ...extra,
    },
  };
}

async function runThrough(tasks: TaskSpec[], harness: ReturnType<typeof fakeHarness>, push = [{ host: server.host, secret: 'push', key: 'token', username: PUSHER.username }]) {
  const store = memoryPlatform(harness, { tasks, push });
  const logs: string[] = [];
  const out = makeTmpDir();
  const controller = new Controller({
    store,
    namespace: NS,
    log: (l) => logs.push(l),
    // The controller fetches the warm sources (it alone holds git credentials; this source needs none, only the CA).
    fetchSources: (t, p, h) => fetchSourcesArchive(t, p, h, { env: { PATH: process.env.PATH, GIT_SSL_CAINFO: server.caFile } }),
    deliver: localDeliverer({ PADDOCK_PUSH_TOKEN: PUSHER.password, GIT_SSL_CAINFO: server.caFile }, out, (l) => logs.push(l)),
  });
  await controller.start();
  const { auth, tokenFile, headers } = localToken(makeTmpDir());
  const api = await startApis(controller, { port: 0, workerPort: 0, host: '127.0.0.1', auth });
  // The worker's environment has no push token and no git settings: its sources come in the lease.
  await runWorker({ controller: api.workers.url, pool: 'warm', id: 'w1', tokenFile, workDir: makeTmpDir(), maxRuns: tasks.length, waitMs: 200, env: { PATH: process.env.PATH }, log: (l) => logs.push(l), stdout: devNull(), stderr: devNull() });
  const end = Date.now() + 30_000;
  while (tasks.some((t) => ['pending', undefined].includes(controller.task(t.name)?.run?.delivery?.state)) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  return { store, controller, api, logs, headers, close: async () => (await api.close(), await controller.stop()) };
}

function devNull(): NodeJS.WritableStream {
  const { Writable } = require('stream');
  return new Writable({ write: (_c: unknown, _e: unknown, cb: () => void) => cb() });
}

describe('delivery through the controller (warm worker, real HTTPS git server)', () => {
  test('the patch travels with the report, is stored gzipped with the run and shown by the API; the push lands; the hostile agent found no token', async () => {
    const { task, harness } = spec('hunt');
    const r = await runThrough([task], harness);
    try {
      const view = r.controller.task('hunt')!;
      expect(view.run).toMatchObject({ phase: 'Succeeded', changes: [{ source: 'work', base, files: 2, insertions: 2, deletions: 0 }] });
      expect(view.run!.delivery).toMatchObject({ state: 'pushed', branch: 'paddock/hunt', base, commit: expect.stringMatching(/^[0-9a-f]{40}$/) });
      const cm = r.store.list('ConfigMap').find((c) => c.metadata.name === view.run!.configMap)!;
      expect(Object.keys(cm.binaryData as object)).toEqual(['patch-work.gz']);
      expect(cm.metadata.annotations!['paddock.dev/delivery']).toBe('pushed');
      expect(JSON.parse((cm.data as any)['delivery.json']).state).toBe('pushed');
      // The API: run view, results and the patch itself.
      const got: any = await (await fetch(`${r.api.tasks.url}/v1/tasks/hunt`, { headers: r.headers })).json();
      expect(got.run.delivery).toEqual(view.run!.delivery);
      const results: any = await (await fetch(`${r.api.tasks.url}/v1/tasks/hunt/results`, { headers: r.headers })).json();
      expect(results.changes[0]).toMatchObject({ source: 'work', files: 2 });
      const patchRes = await fetch(`${r.api.tasks.url}/v1/tasks/hunt/patch`, { headers: r.headers });
      expect(patchRes.headers.get('x-paddock-base')).toBe(base);
      expect(await patchRes.text()).toContain('+++ b/hunt.txt');
      // What the hostile agent found, as delivered to the branch.
      expect(git(bare, 'show', 'paddock/hunt:hunt.txt')).toBe('found: nothing');
      expect(git(bare, 'log', '-1', '--format=%an <%ae> %s', 'paddock/hunt')).toBe('Ada Agent <ada@example.org> Deliver hunt');
      expect(r.logs.join('\n')).not.toContain(PUSHER.password);
      // kubectl describe: the run's story ends with its delivery.
      await new Promise((res) => setImmediate(res));
      const story = r.store.list('Event').filter((e) => (e.regarding as any).name === 'task-hunt');
      expect(story.map((e) => e.reason)).toEqual(['Queued', 'Started', 'Succeeded', 'Delivered']);
      expect(story[3]).toMatchObject({ type: 'Normal', action: 'Deliver', note: expect.stringMatching(new RegExp(`pushed ${view.run!.delivery!.commit!.slice(0, 12)} to .*acme/work.git branch paddock/hunt \\[delivery pushed\\]$`)) });
    } finally {
      await r.close();
    }
  });

  test('an agent that failed delivers nothing (skipped, with the reason); onAgentFailure delivers anyway', async () => {
    const failing = spec('fails', {}, 'echo x >> edit.txt; exit 3');
    const anyway = spec('anyway', { delivery: { branch: 'paddock/anyway', onAgentFailure: true } }, 'echo x >> edit.txt; exit 3');
    const r = await runThrough([failing.task, anyway.task], failing.harness);
    try {
      expect(r.controller.task('fails')!.run!.delivery).toMatchObject({ state: 'skipped', reason: expect.stringMatching(/the run ended failed; the task delivers only a succeeded run \(set delivery.onAgentFailure/) });
      expect(() => git(bare, 'rev-parse', '--verify', '-q', 'refs/heads/paddock/fails')).toThrow();
      expect(r.controller.task('anyway')!.run!.delivery).toMatchObject({ state: 'pushed', branch: 'paddock/anyway' });
      await new Promise((res) => setImmediate(res));
      const last = (task: string) => r.store.list('Event').filter((e) => (e.regarding as any).name === `task-${task}`).pop();
      expect(last('fails')).toMatchObject({ reason: 'DeliverySkipped', type: 'Normal', note: expect.stringMatching(/delivery skipped .*: the run ended failed/) });
      expect(last('anyway')).toMatchObject({ reason: 'Delivered', type: 'Normal' });
    } finally {
      await r.close();
    }
  });
});

describe('Job mode: the patch travels in the tail of the runner\'s log (a thin fake kubelet in this test)', () => {
  test('the termination message says how many log lines; the controller reads exactly those and stores the patch', async () => {
    const { task, harness } = spec('jobrun', { delivery: undefined }, 'printf "new\\n" > new.txt && echo more >> edit.txt');
    const dirs = makeRunDirs(makeTmpDir());
    const r = await runTask(dirs, { task, harness }, { env: { PATH: process.env.PATH, GIT_SSL_CAINFO: server.caFile } });
    expect(r.status.changes[0]).toMatchObject({ files: 2 });
    const termFile = path.join(makeTmpDir(), 'termination-log');
    const lines = writeTerminationMessage(dirs.artifacts, termFile)!;
    expect(lines.length).toBeGreaterThan(0);
    const message = fs.readFileSync(termFile, 'utf8');
    expect(Buffer.byteLength(message)).toBeLessThanOrEqual(4096);
    expect(JSON.parse(message).status.patchLogLines).toBe(lines.length);

    const store = memoryPlatform(harness, { mode: 'job', tasks: [task] });
    const job = runName(task.name, specHashOf(task));
    // The declared Job exists (adopted), has finished, and its pod left a message and a log.
    store.createSync({ apiVersion: 'batch/v1', kind: 'Job', metadata: { name: job, labels: { 'app.kubernetes.io/name': 'paddock', 'app.kubernetes.io/instance': NS, 'app.kubernetes.io/component': 'task' } }, status: { succeeded: 1, conditions: [{ type: 'Complete', status: 'True' }] } });
    store.createSync({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `${job}-abcde`, labels: { 'app.kubernetes.io/name': 'paddock', 'app.kubernetes.io/instance': NS, 'app.kubernetes.io/component': 'task', 'batch.kubernetes.io/job-name': job } }, status: { phase: 'Succeeded', containerStatuses: [{ name: 'runner', state: { terminated: { exitCode: 0, message } } }] } });
    store.logs.set(`${job}-abcde/runner`, `[agent] lots of output\n${'x'.repeat(100)}\n${lines.join('\n')}\n`);
    const controller = new Controller({ store, namespace: NS });
    await controller.start();
    try {
      const end = Date.now() + 10_000;
      while (controller.task('jobrun')?.run?.phase !== 'Succeeded' && Date.now() < end) await new Promise((res) => setTimeout(res, 50));
      const cm = store.list('ConfigMap').find((c) => c.metadata.name === `run-${job}`)!;
      const stored = gunzipSync(Buffer.from((cm.binaryData as any)['patch-work.gz'], 'base64'));
      expect(stored).toEqual(fs.readFileSync(path.join(dirs.artifacts, 'patches', 'work.patch')));
      expect(controller.task('jobrun')!.run!.changes![0]).toMatchObject({ source: 'work', files: 2 });
    } finally {
      await controller.stop();
    }
  });
});

describe('bad deliveries are refused at submit (task API), naming the field', () => {
  let controller: Controller;
  let api: ApiServers;
  let headers: Record<string, string>;
  beforeAll(async () => {
    const { harness } = spec('x');
    controller = new Controller({ store: memoryPlatform(harness, { push: [{ host: 'github.com', secret: 'push', key: 'token' }] }), namespace: NS });
    await controller.start();
    const t = localToken(makeTmpDir());
    headers = t.headers;
    api = await startApis(controller, { port: 0, workerPort: 0, host: '127.0.0.1', auth: t.auth });
  });
  afterAll(async () => {
    await api.close();
    await controller.stop();
  });
  const submit = async (delivery: unknown, url = 'https://github.com/acme/work.git') => {
    const { task } = spec('bad');
    const res = await fetch(`${api.tasks.url}/v1/tasks`, { method: 'POST', headers, body: JSON.stringify({ ...task, sources: [{ ...task.sources![0], url }], delivery }) });
    return { status: res.status, body: (await res.json()) as any };
  };

  test.each([
    [{ branch: 'fix..it' }, /delivery.branch: "fix..it" is not a branch name git accepts: it contains ".."; e.g. "fix.it"/],
    [{ branch: 'feature/x.lock' }, /delivery.branch: .* ending with ".lock"/],
    [{ branch: 'has space' }, /delivery.branch: .* contains a space/],
    [{ branch: 'ok', repository: 'https://gitlab.com/me/work.git' }, /delivery.repository: "https:\/\/gitlab.com\/me\/work.git" is on gitlab.com, but the pool's push credentials are for github.com/],
    [{ branch: 'ok', pullRequest: { title: 'x'.repeat(257) } }, /delivery.pullRequest.title: is 257 characters; GitHub accepts at most 256/],
  ])('%j', async (delivery, message) => {
    const r = await submit(delivery);
    expect(r.status).toBe(422);
    expect(r.body.problems.join('\n')).toMatch(message);
  });

  test('a delivery to a host without a push credential', async () => {
    const r = await submit({ branch: 'ok' }, 'https://git.example.org/acme/work.git');
    expect(r.status).toBe(422);
    expect(r.body.problems.join('\n')).toMatch(/delivery: "https:\/\/git.example.org\/acme\/work.git" is on git.example.org, but the pool's push credentials are for github.com/);
  });

  test('a schema violation names the field (400)', async () => {
    const r = await submit({ branch: 'ok', author: { name: 'A' } });
    expect(r.status).toBe(400);
    expect(r.body.problems.join('\n')).toMatch(/delivery.author.email: is required/);
  });
});
