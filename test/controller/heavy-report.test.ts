/**
 * Heavy reports through a real warm worker (runWorker, in this process) and the real
 * lease API on loopback: a report that is too large is shortened, never lost, and
 * never re-runs the agent as an "infrastructure" failure; extraction of hostile output
 * does not starve the lease renewals.
 */
import { Writable } from 'stream';
import { ApiServer, startApi } from '../../controller/api';
import { Controller } from '../../controller/controller';
import { runWorker } from '../../runner/worker';
import { fakeHarness, makeTmpDir } from '../support/runner-fixtures';
import { localToken, memoryPlatform, taskSpec } from './support/platform';
import * as path from 'path';

jest.setTimeout(120_000);

const sink = () => new Writable({ write: (_c, _e, cb) => cb() });

describe('heavy reports: real worker, real lease API', () => {
  let api: ApiServer | undefined;
  let controller: Controller | undefined;
  afterEach(async () => {
    await api?.close();
    await controller?.stop();
    api = controller = undefined;
  });

  async function runOne(agentArgs: string[], opts: { maxBodyBytes?: number; leaseTtlMs?: number } = {}) {
    const harness = fakeHarness('heavy', agentArgs);
    const store = memoryPlatform(harness, { tasks: [taskSpec('heavy', { harness: harness.name })] });
    const log: string[] = [];
    controller = new Controller({ store, namespace: 'paddock', leaseTtlMs: opts.leaseTtlMs ?? 30_000, settings: { backoffBaseMs: 10 }, log: (l) => log.push(l) });
    await controller.start();
    const dir = makeTmpDir('paddock-heavy-');
    const { auth, tokenFile } = localToken(dir);
    api = await startApi(controller, { port: 0, host: '127.0.0.1', routes: 'workers', auth, ...(opts.maxBodyBytes ? { maxBodyBytes: opts.maxBodyBytes } : {}) });
    const workerLog: string[] = [];
    const done = await runWorker({ controller: api.url, pool: 'warm', tokenFile, id: 'w1', workDir: path.join(dir, 'work'), maxRuns: 1, waitMs: 500, env: { PATH: process.env.PATH }, stdout: sink(), stderr: sink(), log: (l) => workerLog.push(l) });
    return { done, log, workerLog, view: controller.task('heavy')!, results: controller.results('heavy')! };
  }

  test('20,000 malformed result blocks: the report is accepted at once, the run succeeds on attempt 1', async () => {
    const r = await runOne(['malformed', '20000']);
    expect(r.done).toBe(1);
    expect(r.view.run).toMatchObject({ phase: 'Succeeded', attempt: 1, outcome: 'succeeded' });
    expect(r.log.filter((l) => /leased by worker/.test(l))).toHaveLength(1);
    expect(r.results.status).toMatchObject({ outcome: 'succeeded', counts: { results: 1, parseErrors: 20_000 }, parseErrorsOmitted: 19_900 });
    expect(r.results.results).toEqual([{ final: true }]);
  });

  test('a report over the controller\'s body limit (413): the outcome is sent alone, saying what was dropped; the agent is not re-run', async () => {
    const r = await runOne(['results', '400'], { maxBodyBytes: 32 * 1024 });
    expect(r.done).toBe(1);
    expect(r.workerLog.join('\n')).toMatch(/refused the report as too large; sending the outcome alone/);
    expect(r.view.run).toMatchObject({ phase: 'Succeeded', attempt: 1, outcome: 'succeeded' });
    expect(r.log.filter((l) => /leased by worker/.test(l))).toHaveLength(1);
    expect(r.results.truncated).toBe(true);
    expect(r.results.status).toMatchObject({ outcome: 'succeeded', counts: { results: 401 }, reportShortened: expect.stringMatching(/HTTP 413.*results\.jsonl \(\d+ bytes\) dropped/) });
    expect(r.results.results).toEqual([expect.objectContaining({ 'paddock.truncated': true })]);
  });

  test('400 KB of unclosed fences on a warm worker with a 900 ms lease: renewals keep up, one attempt', async () => {
    const r = await runOne(['unclosed', '40000'], { leaseTtlMs: 900 });
    expect(r.view.run).toMatchObject({ phase: 'Succeeded', attempt: 1 });
    expect(r.log.join('\n')).not.toMatch(/taken back/);
    expect(r.results.results).toEqual([{ final: true }]);
  });
});

describe('shortenStatus: a status.json that cannot fit keeps its outcome and counts', () => {
  test('a 3 MB status (messages, problems, parse errors) is cut to the limit, saying what went', () => {
    const { shortenStatus, MAX_STATUS_BYTES } = require('../../core/protocol') as typeof import('../../core/protocol');
    const status = {
      outcome: 'failed',
      counts: { results: 0, parseErrors: 5000 },
      message: 'm'.repeat(1_000_000),
      problems: Array.from({ length: 1000 }, (_, i) => `problem ${i} ${'p'.repeat(1000)}`),
      parseErrors: Array.from({ length: 5000 }, (_, i) => ({ block: i + 1, message: 'bad', excerpt: 'e'.repeat(200) })),
    };
    const short = shortenStatus(status);
    expect(Buffer.byteLength(JSON.stringify(short))).toBeLessThanOrEqual(MAX_STATUS_BYTES);
    expect(short).toMatchObject({ outcome: 'failed', counts: { results: 0, parseErrors: 5000 } });
    expect(short.reportShortened).toMatch(/message cut to 2000 characters; kept \d+ of 5000 listed parse errors; problems left out/);
    expect((short.parseErrors as unknown[]).length + Number(short.parseErrorsOmitted)).toBe(5000);
    // A status that fits is returned as it is.
    expect(shortenStatus({ outcome: 'succeeded' })).toEqual({ outcome: 'succeeded' });
  });
});
