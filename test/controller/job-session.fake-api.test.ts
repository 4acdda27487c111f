/**
 * A session in a job pool, end to end but for the cluster: the `paddock controller`
 * process (KubeStore) against the THIN FAKE of the Kubernetes API; the test plays the
 * kubelet: for each Job the controller creates it runs the Job's pod (`paddock run` per
 * container with the Job's args and mounts, test/support/kubelet.ts: the real runner and a
 * stand-in agent over a real HTTPS git server), then writes the pod with the runner's
 * termination message and its log, and marks the Job complete. Proves the session lock
 * (the second task's Job only once the first run ended and its state was saved, the
 * waiting task shown as such), the state into the Job (the second run continues the
 * first), the state back through the pod's log, and the secret scan on what is saved.
 */
import * as fs from 'fs';
import * as path from 'path';
import { AgentPool, Harness, SandboxProfile } from '../../constructs';
import type { KubeObject } from '../../controller/store';
import { LABEL_SESSION } from '../../core/labels';
import type { SessionState } from '../../core/session';
import { Capture, makeTmpDir } from '../support/runner-fixtures';
import { runJobPod } from '../support/kubelet';
import { demoGitServerForSuite } from '../support/git-server';
import { newPlatform, synth } from '../support/synth';
import { FakeKubeApi, startFakeKubeApi } from './support/fake-kube-api';
import { call, Ctl, startController, stopController, until } from './support/controller-process';
import { Controller } from '../../controller/controller';
import { runName } from '../../controller/reconcile';
import { encodeTerminationMessage } from '../../core/protocol';
import { specHashOf } from '../../core/stable-json';
import { memoryPlatform, NS, slowHarness } from './support/platform';

jest.setTimeout(90_000);

const ADMIN = 'admin-token';
// Appends the prompt's last line to notes.txt of its checkout and prints the file.
const AGENT = `const fs = require('fs'); let p = ''; process.stdin.on('data', (d) => (p += d)); process.stdin.on('end', () => { fs.appendFileSync('notes.txt', p.trim().split('\\n').pop() + '\\n'); process.stdout.write('NOTES\\n' + fs.readFileSync('notes.txt', 'utf8')); });`;

let fake: FakeKubeApi;
let ctl: Ctl | undefined;

const suite = demoGitServerForSuite('paddock-job-session-api-');

afterEach(async () => {
  await stopController(ctl);
  await fake?.close();
});

/** What the test's kubelet saw when each Job appeared. */
interface JobSeen {
  readonly task: string;
  readonly jobs: string[];
  readonly session?: SessionState;
  readonly runPhases: Record<string, string>;
  readonly mountsSession: boolean;
}

test('fake API, test as kubelet: two tasks of a session in a job pool run one after the other, the second from the first\'s saved state; the saved state is scanned', async () => {
  fake = await startFakeKubeApi('paddock');
  fake.addToken(ADMIN, { username: 'admin' });
  for (const verb of ['create', 'get', 'list']) fake.grant({ user: 'admin', verb, group: 'paddock.dev', resource: 'tasks' });
  const { chart, platform } = newPlatform({ namespace: 'paddock' });
  const harness = new Harness({ name: 'notes', capability: 'harness.notes', image: 'registry.example.com/paddock/notes:1', command: [process.execPath, '-e', AGENT] });
  new AgentPool(platform, 'jobs', { harnesses: [harness], sandbox: SandboxProfile.none() });
  for (const o of synth(chart)) if (o.kind === 'ConfigMap') fake.store.createSync(o as KubeObject);

  // The kubelet's part, for every Job the controller creates.
  const seen: JobSeen[] = [];
  const pods: Array<Promise<void>> = [];
  const waitingShown: unknown[] = [];
  const stopWatch = await fake.store.watch('Job', undefined, (event, job) => {
    if (event === 'add') pods.push(runPod(job));
  });
  const sessionState = (): SessionState | undefined => {
    const cm = fake.store.list('ConfigMap', `${LABEL_SESSION}=notes`)[0];
    return cm ? JSON.parse((cm.data as Record<string, string>)['state.json']) : undefined;
  };
  const runPhases = () => Object.fromEntries(fake.store.list('ConfigMap', 'app.kubernetes.io/component=run').map((c) => [c.metadata.labels!['paddock.dev/task'], c.metadata.labels!['paddock.dev/phase']]));
  async function runPod(job: KubeObject): Promise<void> {
    const task = job.metadata.labels!['paddock.dev/task'];
    const podSpec = (job.spec as any).template.spec;
    const state = sessionState();
    seen.push({ task, jobs: fake.store.list('Job').map((j) => j.metadata.labels!['paddock.dev/task']), ...(state ? { session: state } : {}), runPhases: runPhases(), mountsSession: JSON.stringify(podSpec).includes('"session-notes"') });
    // While the first runs, the second is shown waiting for it.
    if (task === 'one') waitingShown.push(await until('two to be shown waiting', async () => (await view('two')).body.session?.waitingFor && (await view('two')).body, debug));
    const pod = await runJobPod(path.join(suite.root, `pod-${task}`), podSpec, fake.store.list('ConfigMap'), {}, { PATH: process.env.PATH, GIT_SSL_CAINFO: suite.git.caFile }, { stdout: new Capture(), stderr: new Capture() });
    const name = `${job.metadata.name}-x1`;
    fake.store.logs.set(`${name}/runner`, `[agent] output\n${pod.logLines.join('\n')}\n`);
    await fake.store.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, labels: { ...(job.spec as any).template.metadata.labels, 'batch.kubernetes.io/job-name': job.metadata.name, 'job-name': job.metadata.name } },
      status: { phase: pod.code === 0 ? 'Succeeded' : 'Failed', containerStatuses: [{ name: 'runner', state: { terminated: { exitCode: pod.code, reason: pod.code === 0 ? 'Completed' : 'Error', message: pod.message } } }] },
    });
    const current = (await fake.store.get('Job', job.metadata.name))!;
    await fake.store.replace({ ...current, status: pod.code === 0 ? { succeeded: 1, conditions: [{ type: 'Complete', status: 'True' }] } : { failed: 1, conditions: [{ type: 'Failed', status: 'True' }] } });
  }

  const dir = makeTmpDir('paddock-job-session-ctl-');
  const kubeconfig = path.join(dir, 'kubeconfig');
  fs.writeFileSync(kubeconfig, fake.kubeconfig());
  ctl = await startController(kubeconfig);
  const debug = () => `${ctl!.out.join('')}\n--- seen\n${JSON.stringify(seen.map((s) => ({ ...s, session: s.session?.turns.map((t) => t.task) })))}`;
  const view = (name: string) => call(ctl!.url, 'GET', `/v1/tasks/${name}`, { token: ADMIN });
  const task = (name: string, extra: object) => ({ apiVersion: 'paddock.dev/v1alpha1', kind: 'Task', name, pool: 'jobs', harness: 'notes', prompt: `line from ${name}`, timeoutSeconds: 60, sources: [{ name: 'demo', type: 'git_https', url: `${suite.git.url}/demo.git` }], ...extra });
  const ended = (name: string) => until(`${name} to end`, async () => ['Succeeded', 'Failed'].includes((await view(name)).body.phase) && (await view(name)).body, debug, 40_000);
  await until('the controller to serve', async () => (await call(ctl!.url, 'GET', '/v1/tasks', { token: ADMIN })).status === 200 || undefined, debug);

  try {
    expect((await call(ctl.url, 'POST', '/v1/tasks', { token: ADMIN, body: task('one', { session: { name: 'notes', create: true } }) })).status).toBe(201);
    expect((await call(ctl.url, 'POST', '/v1/tasks', { token: ADMIN, body: task('two', { session: { name: 'notes' } }) })).status).toBe(201);
    expect(await ended('one')).toMatchObject({ phase: 'Succeeded' });
    expect(await ended('two')).toMatchObject({ phase: 'Succeeded' });

    expect(waitingShown).toEqual([expect.objectContaining({ phase: 'Queued', session: { name: 'notes', waitingFor: 'one' } })]);
    // The first Job alone, with nothing of a session to mount; the second only once the first run
    // ended and its state was saved, and it mounts that state.
    expect(seen[0]).toMatchObject({ task: 'one', jobs: ['one'], mountsSession: false });
    expect(seen[0].session).toBeUndefined();
    expect(seen[1]).toMatchObject({ task: 'two', jobs: ['one', 'two'], runPhases: { one: 'Succeeded' }, mountsSession: true });
    expect(seen[1].session!.turns.map((t) => t.task)).toEqual(['one']);
    // The second agent found the first one's line in its checkout: the state went in, and came back out through the log.
    const saved = sessionState()!;
    expect(saved).toMatchObject({ name: 'notes', pool: 'jobs', harness: 'notes', resume: 'transcript' });
    expect(saved.turns.map((t) => [t.task, t.output])).toEqual([
      ['one', 'NOTES\nline from one\n'],
      ['two', 'NOTES\nline from one\nline from two\n'],
    ]);
    expect(Object.keys(saved.patches)).toEqual(['demo']);
    // Read through the API server's pod log endpoint, exactly the lines the termination messages named.
    expect(fake.requests.filter((r) => /\/pods\/[^/]+\/log\?/.test(r.url)).map((r) => new URL(r.url, 'http://x').searchParams.get('tailLines'))).toEqual(['2', '2']);

    // What is saved is scanned as the ConfigMap rule scans: a turn holding a key-shaped string is not.
    expect((await call(ctl.url, 'POST', '/v1/tasks', { token: ADMIN, body: task('three', { session: { name: 'notes' }, prompt: 'use sk-proj-abcdefghijklmnopqrstuvwxyz0123' }) })).status).toBe(201);
    const three = await ended('three');
    expect(three.run.message).toMatch(/session state not saved: .*looks like an OpenAI API key/);
    const after = fake.store.list('ConfigMap', `${LABEL_SESSION}=notes`)[0];
    expect(JSON.stringify(after.data)).not.toContain('sk-proj-');
    // The last good state is kept, marked broken: the next task fails saying so.
    expect(JSON.parse((after.data as Record<string, string>)['state.json'])).toMatchObject({ turns: [{ task: 'one' }, { task: 'two' }], broken: { task: 'three', reason: expect.stringMatching(/OpenAI API key/) } });
    await Promise.all(pods);
  } finally {
    stopWatch();
  }
});

describe('a Job\'s session state that cannot be read back marks the session broken (a fake kubelet: the Job, its pod and its log written by the test)', () => {
  const spec = { apiVersion: 'paddock.dev/v1alpha1', kind: 'Task', name: 'lost', pool: 'warm', harness: 'slow', prompt: 'p', timeoutSeconds: 60, session: { name: 'lost', create: true } } as const;
  test.each([
    ['the lines are not in the log', 'no lines here\n', /pod lost-[0-9a-f]+-x1: the runner reported no session state in its log/],
    ['the log cannot be read', undefined, /the session state could not be read from pod lost-[0-9a-f]+-x1's log \(no log of pod/],
  ])('%s', async (_name, log, reason) => {
    const store = memoryPlatform(slowHarness(path.join(suite.root, 'unused.log'), 10), { mode: 'job', tasks: [spec] });
    const job = runName(spec.name, specHashOf(spec));
    const labels = { 'app.kubernetes.io/name': 'paddock', 'app.kubernetes.io/instance': NS, 'app.kubernetes.io/component': 'task', 'paddock.dev/task': spec.name };
    // Adopted as it is (Running), then found finished: the report says one session line follows.
    store.createSync({ apiVersion: 'batch/v1', kind: 'Job', metadata: { name: job, labels }, status: { succeeded: 1, conditions: [{ type: 'Complete', status: 'True' }] } });
    const message = encodeTerminationMessage({ task: spec.name, outcome: 'succeeded', runnerExitCode: 0, sessionLogLines: 1 }, '');
    store.createSync({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `${job}-x1`, labels: { ...labels, 'batch.kubernetes.io/job-name': job } }, status: { phase: 'Succeeded', containerStatuses: [{ name: 'runner', state: { terminated: { exitCode: 0, message } } }] } });
    if (log !== undefined) store.logs.set(`${job}-x1/runner`, log);
    const controller = new Controller({ store, namespace: NS });
    await controller.start();
    try {
      const view = await until('the run to end', () => (controller.task('lost')?.run?.phase === 'Succeeded' ? controller.task('lost') : undefined), () => '', 10_000);
      expect(view!.run!.message).toMatch(/session state not saved: /);
      expect(controller.session('lost')).toMatchObject({ name: 'lost', turns: [], broken: { task: 'lost', reason: expect.stringMatching(reason) } });
    } finally {
      await controller.stop();
    }
  });
});
