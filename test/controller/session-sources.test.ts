/**
 * Sessions in the clean room: the controller fetches a warm task's sources (the worker
 * holds no git credential) and hands the checkout over with the lease; the next task of
 * the session starts from that checkout with the previous run's change applied. A real
 * HTTPS git server, the real controller and lease API on loopback, an in-process warm
 * worker (runWorker, the real runner) and a stand-in agent that appends a line to a file
 * of the checkout and prints the file.
 */
import * as fs from 'fs';
import * as path from 'path';
import { gunzipSync } from 'zlib';
import { ApiServer, startApi } from '../../controller/api';
import { Controller } from '../../controller/controller';
import { taskConfigMap } from '../../controller/observe';
import { fetchSourcesArchive } from '../../controller/sources-archive';
import type { MemoryStore } from '../../controller/store';
import type { HarnessSpec, TaskSpec } from '../../policy/specs';
import { runWorker } from '../../runner/worker';
import { demoGitServerForSuite } from '../support/git-server';
import { devNull, localToken, memoryPlatform, NS } from './support/platform';
import { stableJson } from '../../core/stable-json';
import type { PoolSpec } from '../../policy/specs';
import { until } from './support/controller-process';

jest.setTimeout(90_000);

// Appends the prompt to notes.txt in its working directory (the one source's checkout) and prints the file.
const AGENT = `const fs = require('fs'); let p = ''; process.stdin.on('data', (d) => (p += d)); process.stdin.on('end', () => { fs.appendFileSync('notes.txt', p.trim().split('\\n').pop() + '\\n'); process.stdout.write('NOTES\\n' + fs.readFileSync('notes.txt', 'utf8')); });`;
const harness: HarnessSpec = { apiVersion: 'paddock.dev/v1alpha1', kind: 'Harness', name: 'slow', capability: 'harness.slow', command: [process.execPath, '-e', AGENT], promptVia: 'stdin', results: { from: 'stdout' } };

const suite = demoGitServerForSuite('paddock-session-sources-');

describe('a session over sources the controller fetched', () => {
  let controller: Controller | undefined;
  let api: ApiServer | undefined;
  let abort = new AbortController();
  beforeEach(() => {
    abort = new AbortController();
  });
  afterEach(async () => {
    abort.abort();
    await api?.close();
    await controller?.stop();
  });

  test('the second task starts from the first run\'s change, applied on the checkout the worker was handed', async () => {
    const store: MemoryStore = memoryPlatform(harness);
    const log: string[] = [];
    controller = new Controller({ store, namespace: NS, log: (l) => log.push(l), fetchSources: (t, p, h) => fetchSourcesArchive(t, p, h, { env: { PATH: process.env.PATH, GIT_SSL_CAINFO: suite.git.caFile } }) });
    await controller.start();
    const token = localToken(suite.root);
    api = await startApi(controller, { port: 0, host: '127.0.0.1', routes: 'workers', auth: token.auth });
    const workerLog: string[] = [];
    void runWorker({ controller: api.url, pool: 'warm', tokenFile: token.tokenFile, id: 'w1', workDir: path.join(suite.root, 'work'), waitMs: 200, env: { PATH: process.env.PATH }, signal: abort.signal, log: (l) => workerLog.push(l), stdout: devNull(), stderr: devNull() });
    const debug = () => `--- controller\n${log.join('\n')}\n--- worker\n${workerLog.join('\n')}`;
    const task = (name: string, extra: Partial<TaskSpec>): TaskSpec => ({ apiVersion: 'paddock.dev/v1alpha1', kind: 'Task', name, pool: 'warm', harness: 'slow', prompt: `line from ${name}`, timeoutSeconds: 30, sources: [{ name: 'demo', type: 'git_https', url: `${suite.git.url}/demo.git` }], ...extra });
    const done = (name: string) => until(`${name} to succeed`, () => controller!.task(name)?.run?.phase === 'Succeeded', debug, 30_000);

    await store.create(taskConfigMap(NS, task('one', { session: { name: 'notes', create: true } })));
    await done('one');
    await store.create(taskConfigMap(NS, task('two', { session: { name: 'notes' } })));
    await done('two');

    const state = controller.session('notes')!;
    // The second agent found the first one's line in the checkout it was handed, and added its own.
    expect(state.turns.map((t) => t.task)).toEqual(['one', 'two']);
    expect(state.turns[1].output).toBe('NOTES\nline from one\nline from two\n');
    // The stored change is against the commit the controller fetched, and holds both lines.
    const status = JSON.parse((store.list('ConfigMap').find((cm) => cm.metadata.name === controller!.task('two')!.run!.configMap)!.data as any)['status.json']);
    expect(state.patches.demo.base).toBe(status.sources[0].commit);
    expect(gunzipSync(Buffer.from(state.patches.demo.patch, 'base64')).toString()).toContain('+line from one\n+line from two\n');
    // The same change the run stored (issue 14's patch), not a second diff of the workspace.
    expect(controller.patch('two', 'demo')!.patch!.toString()).toBe(gunzipSync(Buffer.from(state.patches.demo.patch, 'base64')).toString());
    expect(state.pool).toBe('warm');

    // freshWorkspace: the session's conversation goes on, the checkout starts clean.
    await store.create(taskConfigMap(NS, task('three', { session: { name: 'notes', freshWorkspace: true } })));
    await done('three');
    expect(controller.session('notes')!.turns[2].output).toBe('NOTES\nline from three\n');
  });

  test('a change that holds a credential the agent was given is withheld: the session is not continued from it, its next task fails saying so', async () => {
    const token = 'deploy-token-5f0c2a9e7b';
    // An agent that writes the pool's credential (its env) into the checkout.
    const leaky: HarnessSpec = { ...harness, command: [process.execPath, '-e', `require('fs').appendFileSync('notes.txt', 'token ' + process.env.DEPLOY_TOKEN + '\\n'); process.stdout.write('wrote it');`] };
    const store: MemoryStore = memoryPlatform(leaky);
    const pool: PoolSpec = { apiVersion: 'paddock.dev/v1alpha1', kind: 'Pool', name: 'warm', capabilities: [leaky.capability], harnesses: [leaky.name], mode: 'warm', concurrency: 100, credentials: { env: [{ name: 'DEPLOY_TOKEN' }] } };
    await store.replace({ ...(await store.get('ConfigMap', 'pool-warm'))!, data: { 'pool.json': stableJson(pool) } });
    const log: string[] = [];
    controller = new Controller({ store, namespace: NS, log: (l) => log.push(l), fetchSources: (t, p, h) => fetchSourcesArchive(t, p, h, { env: { PATH: process.env.PATH, GIT_SSL_CAINFO: suite.git.caFile } }) });
    await controller.start();
    const auth = localToken(suite.root);
    api = await startApi(controller, { port: 0, host: '127.0.0.1', routes: 'workers', auth: auth.auth });
    const workerLog: string[] = [];
    void runWorker({ controller: api.url, pool: 'warm', tokenFile: auth.tokenFile, id: 'w1', workDir: path.join(suite.root, 'work-leaky'), waitMs: 200, env: { PATH: process.env.PATH, DEPLOY_TOKEN: token }, signal: abort.signal, log: (l) => workerLog.push(l), stdout: devNull(), stderr: devNull() });
    const debug = () => `--- controller\n${log.join('\n')}\n--- worker\n${workerLog.join('\n')}`;
    const task = (name: string, extra: Partial<TaskSpec>): TaskSpec => ({ apiVersion: 'paddock.dev/v1alpha1', kind: 'Task', name, pool: 'warm', harness: 'slow', prompt: 'go', timeoutSeconds: 30, sources: [{ name: 'demo', type: 'git_https', url: `${suite.git.url}/demo.git` }], ...extra });
    const ended = (name: string) => until(`${name} to end`, () => ['Succeeded', 'Failed'].includes(controller!.task(name)?.run?.phase ?? ''), debug, 30_000);

    await store.create(taskConfigMap(NS, task('leak-one', { session: { name: 'creds', create: true } })));
    await ended('leak-one');
    const one = controller.task('leak-one')!.run!;
    // The agent's outcome is its own; the change is withheld, and so the session state is not saved.
    expect(one.phase).toBe('Succeeded');
    expect(one.changes).toEqual([expect.objectContaining({ source: 'demo', patchWithheld: true })]);
    expect(one.message).toMatch(/session state not saved: the change of source "demo" holds a credential the agent was given \(patchWithheld\)/);
    const [cm] = store.list('ConfigMap', 'paddock.dev/session=creds');
    expect(JSON.stringify(cm.data)).not.toContain(token);
    expect(controller.session('creds')).toMatchObject({ patches: {}, broken: { task: 'leak-one', reason: expect.stringMatching(/patchWithheld/) } });

    await store.create(taskConfigMap(NS, task('leak-two', { session: { name: 'creds' } })));
    await ended('leak-two');
    expect(controller.task('leak-two')!.run!.phase).toBe('Failed');
    expect(controller.task('leak-two')!.run!.message).toMatch(/session "creds" cannot be continued: the state of task "leak-one" was not saved \(the change of source "demo" holds a credential .*\); delete it/);
  });
});
