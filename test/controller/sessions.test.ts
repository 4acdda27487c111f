/**
 * Sessions in the controller: the lock (tasks of one session submitted at once never run
 * together, and run in submission order, even with idle workers), the waiting task shown
 * as such, the stored state (ConfigMap session-<name>, carried to the next task, nothing
 * secret saved), and `paddock sessions list|get|delete` over the task API. Two in-process
 * warm workers (runWorker, the real runner) run a stand-in agent that logs its start and end.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ApiServers, startApi, startApis } from '../../controller/api';
import { Controller } from '../../controller/controller';
import { main } from '../../cli/main';
import type { MemoryStore } from '../../controller/store';
import { runWorker } from '../../runner/worker';
import { makeTmpDir } from '../support/runner-fixtures';
import { addPool, devNull, localToken, memoryPlatform, NS, slowHarness, talkHarness, startLocalControlPlane, taskSpec } from './support/platform';
import { packCliState, unpackCliState } from '../../core/session';
import { until } from './support/controller-process';
import type { ApiAuth, TaskAccess } from '../../controller/auth';
import { LABEL_SESSION, standardLabels } from '../../core/labels';

jest.setTimeout(90_000);



/** start/end events of the stand-in agent: the prompt's last line names the task. */
function events(log: string): Array<{ event: string; task: string }> {
  return [...log.matchAll(/(start|end) (?:[^\n]*\n)*?[^\n]*?prompt-([a-z0-9-]+) \d+\n/g)].map((m) => ({ event: m[1], task: m[2] }));
}

describe('sessions: one task at a time, the state carried over, the API and CLI', () => {
  let root: string;
  let apis: ApiServers | undefined;
  let controller: Controller | undefined;
  let token: ReturnType<typeof localToken>;
  let store: MemoryStore;
  let abort: AbortController;

  beforeEach(() => {
    root = makeTmpDir('paddock-sessions-');
    abort = new AbortController();
  });
  afterEach(async () => {
    abort.abort();
    await apis?.close();
    await controller?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  async function start(sleepMs: number): Promise<string> {
    const log = path.join(root, 'agent.log');
    fs.writeFileSync(log, '');
    store = memoryPlatform(slowHarness(log, sleepMs), { concurrency: 10 });
    ({ controller, apis, token } = await startLocalControlPlane({ store, namespace: 'paddock' }, root));
    for (const id of ['w1', 'w2']) {
      void runWorker({ controller: apis.workers.url, pool: 'warm', tokenFile: token.tokenFile, id, workDir: path.join(root, id), waitMs: 200, signal: abort.signal, log: () => undefined, stdout: devNull(), stderr: devNull() });
    }
    return log;
  }
  const submit = (spec: object) => fetch(`${apis!.tasks.url}/v1/tasks`, { method: 'POST', headers: token.headers, body: JSON.stringify(spec) });
  const view = async (name: string): Promise<any> => (await fetch(`${apis!.tasks.url}/v1/tasks/${name}`, { headers: token.headers })).json();

  test('three tasks of one session submitted at once run one after another in submission order; another task runs beside them', async () => {
    const log = await start(600);
    const names = ['s-a', 's-b', 's-c'];
    // Submitted together; a lower priority does not let a later task of the session go first.
    // Back to back, each once the API took the one before (submission order is the order the
    // API accepts them; requests sent a few ms apart may arrive the other way round under load).
    const sessionTasks = async () => {
      await submit(taskSpec('s-a', { session: { name: 'fix', create: true }, priority: 100 }));
      await submit(taskSpec('s-b', { session: { name: 'fix' }, priority: 900 }));
      await submit(taskSpec('s-c', { session: { name: 'fix' } }));
    };
    await Promise.all([sessionTasks(), submit(taskSpec('loner'))]);
    await until('s-a to start', () => events(fs.readFileSync(log, 'utf8')).some((e) => e.task === 's-a'), () => '', 20_000);
    expect(await view('s-b')).toMatchObject({ phase: 'Queued', priority: 900, queue: { position: expect.any(Number) }, session: { name: 'fix', waitingFor: 's-a' } });
    // paddock tasks get shows it as such: its place in the queue and the session task it waits for.
    const shown: string[] = [];
    expect(await main(['tasks', 'get', 's-b', '--server', apis!.tasks.url, '--token', token.token], { stdout: (t) => shown.push(t), stderr: (t) => shown.push(t) })).toBe(0);
    expect(shown.join('')).toMatch(/^s-b\tQueued \(\d of \d, priority 900\)\twarm\ts-b-[0-9a-f]{10} attempt 1\twaits for task s-a of session fix/);
    await until('every task to succeed', async () => (await Promise.all([...names, 'loner'].map(view))).every((v) => v.phase === 'Succeeded'), () => '', 60_000);

    const sessionEvents = events(fs.readFileSync(log, 'utf8')).filter((e) => e.task.startsWith('s-'));
    expect(sessionEvents).toEqual(names.flatMap((task) => [{ event: 'start', task }, { event: 'end', task }]));
    // The loner ran while the session's tasks did (two workers): the lock is per session only.
    const all = events(fs.readFileSync(log, 'utf8'));
    expect(all.findIndex((e) => e.task === 'loner' && e.event === 'start')).toBeLessThan(all.findIndex((e) => e.task === 's-c' && e.event === 'start'));

    // The state survives in a ConfigMap: three turns, each with the task's prompt and answer.
    const cm = store.list('ConfigMap', 'paddock.dev/session=fix')[0];
    expect(cm.metadata.name).toBe('session-fix');
    const state = JSON.parse((cm.data as Record<string, string>)['state.json']);
    expect(state.turns.map((t: any) => t.task)).toEqual(names);
    expect(state.turns[0]).toMatchObject({ prompt: 'prompt-s-a', output: expect.stringContaining('"prompt":"prompt-s-a"') });
    // The third agent got the first two turns as a transcript before its own prompt.
    expect(state.turns[2].output).toContain('This task continues session');
    expect(state.turns[2].output).toContain('prompt-s-b');

    // The CLI, through the task API.
    const out: string[] = [];
    const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => out.push(t) };
    expect(await main(['sessions', 'list', '--server', apis!.tasks.url, '--token', token.token], io)).toBe(0);
    expect(out.join('')).toMatch(/^NAME\tPOOL\tTURNS\tBYTES\tTASKS\nfix\twarm\t3\t\d+\ts-a, s-b, s-c\n$/);
    out.length = 0;
    expect(await main(['sessions', 'get', 'fix', '-o', 'json', '--server', apis!.tasks.url, '--token', token.token], io)).toBe(0);
    expect(JSON.parse(out.join(''))).toMatchObject({ name: 'fix', pool: 'warm', resume: 'transcript', turns: [{ task: 's-a' }, { task: 's-b' }, { task: 's-c' }] });
    out.length = 0;
    expect(await main(['sessions', 'delete', 'fix', '--server', apis!.tasks.url, '--token', token.token], io)).toBe(0);
    expect(store.list('ConfigMap', 'paddock.dev/session=fix')).toEqual([]);
    out.length = 0;
    expect(await main(['sessions', 'get', 'fix', '--server', apis!.tasks.url, '--token', token.token], io)).toBe(3);
    expect(out.join('')).toMatch(/session "fix" not found/);
  });

  test('a task that continues a session that does not exist fails, saying to create it', async () => {
    await start(10);
    await submit(taskSpec('orphan', { session: { name: 'nowhere' } }));
    await until('orphan to fail', async () => (await view('orphan')).phase === 'Failed', () => '', 20_000);
    expect((await view('orphan')).run.message).toMatch(/session "nowhere" does not exist; set session.create: true on the task that starts it/);
  });

  test('nothing secret is saved: a session state holding an API-key-shaped string is refused, the run says why, the next task fails', async () => {
    await start(10);
    await submit(taskSpec('leaky', { session: { name: 'leak', create: true }, prompt: 'use sk-proj-abcdefghijklmnopqrstuvwxyz0123 then prompt-leaky' }));
    await until('leaky to end', async () => ['Succeeded', 'Failed'].includes((await view('leaky')).phase), () => '', 20_000);
    expect((await view('leaky')).run.message).toMatch(/session state not saved: .*looks like an OpenAI API key/);
    // Only the mark that the session is broken is stored, nothing of the turn.
    const [cm] = store.list('ConfigMap', 'paddock.dev/session=leak');
    expect(JSON.stringify(cm.data)).not.toContain('sk-proj-');
    expect(JSON.parse((cm.data as Record<string, string>)['state.json'])).toMatchObject({ turns: [], patches: {}, broken: { task: 'leaky', reason: expect.stringMatching(/looks like an OpenAI API key/) } });
    // Its next task fails saying so, rather than continuing from a state without that turn.
    await submit(taskSpec('after', { session: { name: 'leak' } }));
    await until('after to fail', async () => (await view('after')).phase === 'Failed', () => '', 20_000);
    expect((await view('after')).run.message).toMatch(/session "leak" cannot be continued: the state of task "leaky" was not saved \(.*OpenAI API key.*\); delete it \(paddock sessions delete leak\) and start it again with session.create: true/);
  });

  test('a session task for a job pool is accepted at submit (job-session.test.ts runs one)', async () => {
    const log = path.join(root, 'log');
    store = memoryPlatform(slowHarness(log, 10), { mode: 'job' });
    ({ controller, apis, token } = await startLocalControlPlane({ store, namespace: 'paddock' }, root));
    const res = await submit(taskSpec('t', { session: { name: 'x', create: true } }));
    expect(res.status).toBe(201);
    expect(await view('t')).toMatchObject({ name: 't', pool: 'warm', session: { name: 'x' } });
  });

  test('a fake authorizer: sessions are RBAC\'d as tasks/sessions of their pool; a task of another pool cannot continue one', async () => {
    store = memoryPlatform(slowHarness(path.join(root, 'log'), 10));
    addPool(store, slowHarness(path.join(root, 'log'), 10), 'other', 'warm');
    const state = { name: 'fix', pool: 'warm', harness: 'slow', turns: [{ task: 's-a', prompt: 'p', output: 'o' }], patches: {}, resume: 'transcript' };
    store.createSync({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'session-fix', labels: standardLabels(NS, 'session', { [LABEL_SESSION]: 'fix' }) }, data: { 'state.json': JSON.stringify(state) } });
    controller = new Controller({ store, namespace: NS });
    await controller.start();
    // alice may do everything in both pools; bob may submit to "other" but sees no sessions of "warm".
    const checked: TaskAccess[] = [];
    const auth: ApiAuth = {
      user: async (t) => (t === 'alice-token' || t === 'bob-token' ? { username: t.replace('-token', '') } : undefined),
      allowed: async (user, access) => {
        checked.push(access);
        return user.username === 'alice' || access.pool === 'other';
      },
      worker: async () => undefined,
    };
    apis = await startApis(controller, { port: 0, workerPort: 0, host: '127.0.0.1', auth });
    const as = (who: string, method: string, route: string, body?: object) =>
      fetch(`${apis!.tasks.url}${route}`, { method, headers: { Authorization: `Bearer ${who}-token`, 'Content-Type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));

    expect(await as('alice', 'GET', '/v1/sessions')).toMatchObject({ status: 200, body: { sessions: [{ name: 'fix', pool: 'warm', turns: [{ task: 's-a' }] }] } });
    expect(await as('bob', 'GET', '/v1/sessions')).toEqual({ status: 200, body: { sessions: [] } });
    const denied = await as('bob', 'GET', '/v1/sessions/fix');
    expect(denied.status).toBe(403);
    expect(denied.body.error).toMatch(/bob may not get tasks\/sessions of pool "warm" \(RBAC: verb "get" on resource "tasks\/sessions"/);
    expect((await as('bob', 'DELETE', '/v1/sessions/fix')).status).toBe(403);
    expect(store.list('ConfigMap', `${LABEL_SESSION}=fix`)).toHaveLength(1);
    expect(checked).toContainEqual({ verb: 'delete', pool: 'warm', subresource: 'sessions' });

    // The session's transcript stays in its pool: bob's task in "other" may not continue it.
    const moved = await as('bob', 'POST', '/v1/tasks', taskSpec('steal', { pool: 'other', session: { name: 'fix' } }));
    expect(moved.status).toBe(422);
    expect(moved.body.error).toMatch(/session "fix" belongs to pool "warm"; a task of pool "other" cannot continue it/);
    expect(await as('bob', 'POST', '/v1/tasks', taskSpec('mine', { pool: 'other', session: { name: 'bobs', create: true } }))).toMatchObject({ status: 201 });

    expect(await as('alice', 'DELETE', '/v1/sessions/fix')).toEqual({ status: 200, body: { deleted: 'fix' } });
    expect(await as('alice', 'GET', '/v1/sessions/fix')).toMatchObject({ status: 404, body: { error: 'session "fix" not found' } });
  });

  test('a retried session task starts again from the state before its first attempt, which is not saved', async () => {
    // Attempt 1 fails; attempt 2 prints the prompt it got (with no transcript of attempt 1).
    const counter = path.join(root, 'attempts');
    const agent = `const fs = require('fs'); let p = ''; process.stdin.on('data', (d) => (p += d)); process.stdin.on('end', () => { const n = (fs.existsSync(${JSON.stringify(counter)}) ? fs.readFileSync(${JSON.stringify(counter)}, 'utf8').length : 0) + 1; fs.appendFileSync(${JSON.stringify(counter)}, 'x'); process.stdout.write(n === 1 ? 'failed attempt' : 'got: ' + p); process.exitCode = n === 1 ? 1 : 0; });`;
    store = memoryPlatform({ apiVersion: 'paddock.dev/v1alpha1', kind: 'Harness', name: 'slow', capability: 'harness.slow', command: [process.execPath, '-e', agent], promptVia: 'stdin', results: { from: 'stdout' } });
    ({ controller, apis, token } = await startLocalControlPlane({ store, namespace: NS, settings: { backoffBaseMs: 10 } }, root));
    void runWorker({ controller: apis.workers.url, pool: 'warm', tokenFile: token.tokenFile, id: 'w1', workDir: path.join(root, 'w1'), waitMs: 200, signal: abort.signal, log: () => undefined, stdout: devNull(), stderr: devNull() });
    await submit(taskSpec('retried', { session: { name: 'again', create: true }, retries: 1, prompt: 'go' }));
    await until('retried to succeed', async () => (await view('retried')).phase === 'Succeeded', () => '', 30_000);
    expect((await view('retried')).run).toMatchObject({ attempt: 2 });
    expect(controller.session('again')!.turns).toEqual([{ task: 'retried', prompt: 'go', output: 'got: go' }]);
  });

  describe('a harness that resumes natively (a fake CLI, talk-agent.js, that keeps its conversation in HOME)', () => {
    async function startTalk(): Promise<void> {
      store = memoryPlatform(talkHarness());
      ({ controller, apis, token } = await startLocalControlPlane({ store, namespace: NS }, root));
      // Two workers: the second task may run in another directory, with another HOME.
      for (const id of ['w1', 'w2']) {
        void runWorker({ controller: apis.workers.url, pool: 'warm', tokenFile: token.tokenFile, id, workDir: path.join(root, id), waitMs: 200, signal: abort.signal, log: () => undefined, stdout: devNull(), stderr: devNull() });
      }
    }
    const talk = (name: string, session: object, prompt: string) => taskSpec(name, { harness: 'talk', session, prompt } as any);
    const ended = async (name: string) => until(`${name} to end`, async () => ['Succeeded', 'Failed'].includes((await view(name)).phase), () => '', 30_000);

    test('the CLI\'s conversation files travel with the session: the next run resumes them (no transcript), the API and CLI show their size', async () => {
      await startTalk();
      await submit(talk('t-one', { name: 'chat', create: true }, 'first question'));
      await ended('t-one');
      await submit(talk('t-two', { name: 'chat' }, 'second question'));
      await ended('t-two');
      expect((await view('t-two')).phase).toBe('Succeeded');
      const state = controller!.session('chat')!;
      expect(state).toMatchObject({ resume: 'native', cli: { id: expect.stringMatching(/^[0-9a-f-]{36}$/), files: 1, bytes: expect.any(Number), state: expect.any(String) } });
      const id = state.cli!.id;
      // The first run started the conversation, the second resumed it from the restored file, its prompt bare.
      expect(state.turns[0].output).toBe(`--start ${id}\nuser: first question\n`);
      expect(state.turns[1].output).toBe(`--resume ${id}\nuser: first question\nuser: second question\n`);
      expect(unpackCliState(state.cli!.state!).map((f) => [f.path, f.content.toString()])).toEqual([[`.talk/${id}.log`, 'user: first question\nuser: second question\n']]);

      const out: string[] = [];
      const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => out.push(t) };
      expect(await main(['sessions', 'get', 'chat', '--server', apis!.tasks.url, '--token', token.token], io)).toBe(0);
      expect(out.join('')).toMatch(/^session chat: pool warm, harness talk, resumed by native, \d+ bytes\nCLI conversation state: 1 file\(s\), 43 bytes \(\d+ stored\)\nturn 1: task t-one\nturn 2: task t-two\n/);
      out.length = 0;
      expect(await main(['sessions', 'get', 'chat', '-o', 'json', '--server', apis!.tasks.url, '--token', token.token], io)).toBe(0);
      expect(JSON.parse(out.join(''))).toMatchObject({ resume: 'native', cli: { files: 1, bytes: 43, stored: expect.any(Number) } });
      expect(out.join('')).not.toContain(state.cli!.state!);
    });

    test.each<[string, object, RegExp]>([
      ['withheld by the runner (a granted credential in it)', { withheld: "the CLI's conversation file .talk/x.log holds a credential the agent was given; it is never stored, so the session cannot continue from it" }, /the CLI's conversation state was not kept: the CLI's conversation file \.talk\/x\.log holds a credential the agent was given/],
      ['not a packed file list', { state: 'bm90LWd6aXA=' }, /the CLI state is not a gzipped, base64-encoded file list/],
      ['holding a key-shaped string', { state: packCliState([{ path: '.talk/x.log', mode: 0o600, content: Buffer.from('AWS_SECRET=AKIAABCDEFGHIJKLMNOP') }]) }, /looks like/],
    ])('a reported CLI state %s is not stored: the session is broken, saying why', async (_what, cli, reason) => {
      store = memoryPlatform(talkHarness(), { tasks: [taskSpec('raw', { harness: 'talk', session: { name: 'raw', create: true } } as any)] });
      controller = new Controller({ store, namespace: NS });
      await controller.start();
      const { auth, headers } = localToken(root);
      const api = await startApi(controller, { port: 0, host: '127.0.0.1', routes: 'workers', auth });
      try {
        const post = (route: string, body: unknown) => fetch(api.url + route, { method: 'POST', headers, body: JSON.stringify(body) }).then(async (r) => ({ status: r.status, body: (r.status === 204 ? undefined : await r.json()) as any }));
        const grant = await post('/v1/leases', { pool: 'warm', worker: 'w', waitMs: 0 });
        expect(grant.status).toBe(200);
        const session = { name: 'raw', harness: 'talk', turns: [{ task: 'raw', prompt: 'p', output: 'o' }], patches: {}, resume: 'native', cli: { id: '0cb916db-26aa-40f2-86b5-1ba81b225fd2', bytes: 10, files: 1, ...cli } };
        expect((await post(`/v1/leases/${grant.body.id}/complete`, { worker: 'w', status: { outcome: 'succeeded', task: 'raw' }, results: '', session })).status).toBe(200);
        const stored = controller.session('raw')!;
        expect(stored).toMatchObject({ turns: [], patches: {}, resume: 'transcript', broken: { task: 'raw', reason: expect.stringMatching(reason) } });
        expect(stored.cli).toBeUndefined();
        expect(controller.task('raw')!.run!.message).toMatch(/session state not saved: /);
      } finally {
        await api.close();
      }
    });

    test('nothing secret is saved: a CLI conversation holding an API-key-shaped string is refused, the session is broken and says why', async () => {
      await startTalk();
      await submit(talk('t-leak', { name: 'leaky-chat', create: true }, 'LEAK please'));
      await ended('t-leak');
      expect((await view('t-leak')).run.message).toMatch(/session state not saved: .*looks like an OpenAI API key/);
      const [cm] = store.list('ConfigMap', `${LABEL_SESSION}=leaky-chat`);
      expect(JSON.stringify(cm.data)).not.toContain('sk-proj-');
      expect(JSON.parse((cm.data as Record<string, string>)['state.json'])).toMatchObject({ turns: [], patches: {}, broken: { task: 't-leak', reason: expect.stringMatching(/looks like an OpenAI API key/) } });
      expect(JSON.parse((cm.data as Record<string, string>)['state.json']).cli).toBeUndefined();
      await submit(talk('t-after', { name: 'leaky-chat' }, 'go on'));
      await ended('t-after');
      expect((await view('t-after')).run.message).toMatch(/session "leaky-chat" cannot be continued: the state of task "t-leak" was not saved/);
    });
  });
});
