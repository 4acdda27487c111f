/**
 * The reconcile function, table-driven over observed states: pure input -> actions,
 * no store, no clock, no processes.
 */
import type { TaskSpec } from '../../policy/specs';
import {
  Action,
  afterAttempt,
  DEFAULT_SETTINGS,
  ObservedJob,
  ObservedPod,
  ObservedPool,
  ObservedRun,
  ObservedState,
  ObservedTask,
  pickWarmRun,
  poolQueue,
  queueOrder,
  reconcile,
  runName,
  sessionBlocker,
} from '../../controller/reconcile';
import { specHashOf } from '../../core/stable-json';
import { decodeTerminationMessage, encodeTerminationMessage } from '../../core/protocol';

const NOW = 1_000_000;

const template = {
  apiVersion: 'batch/v1',
  kind: 'Job',
  metadata: { name: '${JOB_NAME}', labels: { 'paddock.dev/task': '${TASK_NAME}', 'paddock.dev/spec-hash': '${SPEC_HASH}' } },
  spec: {
    backoffLimit: 0,
    template: {
      spec: {
        restartPolicy: 'Never',
        containers: [{ name: 'runner', image: '${IMAGE}', args: ['run'] }],
        volumes: [
          { name: 'task', configMap: { name: '${TASK_CONFIGMAP}' } },
          { name: 'harness', configMap: { name: '${HARNESS_CONFIGMAP}' } },
        ],
      },
    },
  },
} as any;

function spec(name: string, extra: Partial<TaskSpec> = {}): TaskSpec {
  return { apiVersion: 'paddock.dev/v1alpha1', kind: 'Task', name, pool: 'codex', harness: 'codex', prompt: `do ${name}`, timeoutSeconds: 60, ...extra };
}

function task(name: string, extra: Partial<TaskSpec> = {}, createdAt = 1): ObservedTask {
  const s = spec(name, extra);
  return { name, configMap: `task-${name}`, uid: `uid-${name}`, spec: s, specHash: specHashOf(s), createdAt };
}

const rn = (t: ObservedTask) => runName(t.name, t.specHash!);

function run(t: ObservedTask, extra: Partial<ObservedRun> = {}): ObservedRun {
  return { name: rn(t), task: t.name, specHash: t.specHash!, pool: 'codex', mode: 'job', phase: 'Queued', attempt: 1, agentFailures: 0, createdAt: t.createdAt, ...extra };
}

function job(name: string, extra: Partial<ObservedJob> = {}): ObservedJob {
  return { name, active: 1, succeeded: 0, failed: 0, conditions: [], deleting: false, ...extra };
}

function pod(jobName: string, extra: Partial<ObservedPod> = {}): ObservedPod {
  return { name: `${jobName}-abcde`, job: jobName, phase: 'Running', createdAt: 1, ...extra };
}

const pool = (extra: Partial<ObservedPool> = {}): ObservedPool => ({ name: 'codex', mode: 'job', concurrency: 10, capabilities: ['code'], harnesses: ['codex'], jobTemplate: template, ...extra });

function state(extra: Partial<ObservedState>): ObservedState {
  return {
    now: NOW,
    tasks: [],
    pools: [pool()],
    harnesses: [{ name: 'codex', configMap: 'harness-codex', image: 'ghcr.io/x/codex:1' }],
    jobs: [],
    pods: [],
    runs: [],
    leases: [],
    ...extra,
  };
}

const types = (actions: Action[]) => actions.filter((a) => a.type !== 'setTaskStatus').map((a) => `${a.type}:${'run' in a && typeof a.run === 'string' ? a.run : 'run' in a ? (a.run as ObservedRun).name : 'name' in a ? a.name : ''}`);
const of = <T extends Action['type']>(actions: Action[], type: T) => actions.filter((a): a is Extract<Action, { type: T }> => a.type === type);
const term = (outcome: string, code: number, results = '') => ({ exitCode: code, reason: code ? 'Error' : 'Completed', message: encodeTerminationMessage({ outcome, runnerExitCode: code, message: `${outcome}!` }, results) });

const a = task('alpha');
const b = task('beta', {}, 2);
const c = task('gamma', {}, 3);

describe('reconcile: table of observed states', () => {
  const cases: Array<[string, ObservedState, string[], (actions: Action[]) => void]> = [
    [
      'new task: a run is queued and, with room in the pool, its Job created in the same pass',
      state({ tasks: [a] }),
      [`createRun:${rn(a)}`, `createJob:${rn(a)}`, `updateRun:${rn(a)}`],
      (acts) => {
        expect(of(acts, 'createRun')[0].run).toMatchObject({ phase: 'Queued', mode: 'job', attempt: 1, pool: 'codex' });
        expect(of(acts, 'setTaskStatus')[0]).toMatchObject({ task: 'alpha', phase: 'Running', run: rn(a) });
      },
    ],
    [
      'new task in a warm pool: a run is queued for the workers, no Job',
      state({ tasks: [a], pools: [pool({ mode: 'warm' })] }),
      [`createRun:${rn(a)}`],
      (acts) => {
        expect(of(acts, 'createRun')[0].run).toMatchObject({ phase: 'Queued', mode: 'warm' });
        expect(of(acts, 'setTaskStatus')[0]).toMatchObject({ task: 'alpha', phase: 'Queued', run: rn(a) });
      },
    ],
    [
      'queued run in a job pool: the Job is created from the pool template, named <task>-<specHash>',
      state({ tasks: [a], runs: [run(a)] }),
      [`createJob:${rn(a)}`, `updateRun:${rn(a)}`],
      (acts) => {
        const j = of(acts, 'createJob')[0].job as any;
        expect(j.metadata.name).toBe(rn(a));
        expect(j.metadata.labels['paddock.dev/spec-hash']).toBe(a.specHash);
        expect(j.spec.activeDeadlineSeconds).toBe(60 + 120);
        expect(j.spec.template.spec.containers[0].image).toBe('ghcr.io/x/codex:1');
        expect(j.spec.template.spec.volumes[0].configMap.name).toBe('task-alpha');
        expect(of(acts, 'updateRun')[0].patch).toMatchObject({ phase: 'Running', startedAt: NOW });
      },
    ],
    [
      'declared task whose Job already exists (synthesized by AgentTask): adopted by name, no second Job',
      state({ tasks: [a], jobs: [job(rn(a))] }),
      [`createRun:${rn(a)}`],
      (acts) => {
        expect(of(acts, 'createRun')[0].run).toMatchObject({ phase: 'Running', adopted: true, mode: 'job' });
        expect(of(acts, 'createJob')).toHaveLength(0);
      },
    ],
    [
      'declared task in a warm pool whose Job exists anyway: still adopted, never leased',
      state({ tasks: [a], pools: [pool({ mode: 'warm' })], jobs: [job(rn(a))] }),
      [`createRun:${rn(a)}`],
      (acts) => expect(of(acts, 'createRun')[0].run).toMatchObject({ phase: 'Running', mode: 'job' }),
    ],
    [
      'adopted Job that already succeeded: the run succeeds with the Job pod report',
      state({ tasks: [a], jobs: [job(rn(a), { active: 0, succeeded: 1 })], pods: [pod(rn(a), { phase: 'Succeeded', terminated: term('succeeded', 0, '{"ok":true}') })] }),
      [`createRun:${rn(a)}`, `updateRun:${rn(a)}`],
      (acts) => {
        const patch = of(acts, 'updateRun')[0].patch;
        expect(patch).toMatchObject({ phase: 'Succeeded', outcome: 'succeeded' });
        expect(patch.result?.resultsJsonl).toBe('{"ok":true}\n');
      },
    ],
    [
      'changed spec: the old run is superseded and its running Job deleted; the new spec queues a new run',
      (() => {
        const a2 = task('alpha', { prompt: 'changed' });
        return state({ tasks: [a2], runs: [run(a, { phase: 'Running' })], jobs: [job(rn(a))] });
      })(),
      [`updateRun:${rn(a)}`, `deleteJob:${rn(a)}`, ...['createRun', 'createJob', 'updateRun'].map((t) => `${t}:${rn(task('alpha', { prompt: 'changed' }))}`)],
      (acts) => expect(of(acts, 'updateRun')[0].patch.phase).toBe('Superseded'),
    ],
    [
      'job succeeded: run Succeeded with results from the termination message',
      state({ tasks: [a], runs: [run(a, { phase: 'Running' })], jobs: [job(rn(a), { active: 0, succeeded: 1, conditions: [{ type: 'Complete', status: 'True' }] })], pods: [pod(rn(a), { phase: 'Succeeded', terminated: term('succeeded', 0, '{"a":1}\n{"b":2}') })] }),
      [`updateRun:${rn(a)}`],
      (acts) => {
        const p = of(acts, 'updateRun')[0].patch;
        expect(p.phase).toBe('Succeeded');
        expect(p.result?.resultsJsonl).toBe('{"a":1}\n{"b":2}\n');
        expect(of(acts, 'setTaskStatus')[0]).toMatchObject({ phase: 'Succeeded' });
      },
    ],
    [
      'job failed because the agent failed: Failed, no retry (the task did not ask)',
      state({ tasks: [a], runs: [run(a, { phase: 'Running' })], jobs: [job(rn(a), { active: 0, failed: 1, conditions: [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded' }] })], pods: [pod(rn(a), { phase: 'Failed', terminated: term('failed', 1) })] }),
      [`updateRun:${rn(a)}`],
      (acts) => expect(of(acts, 'updateRun')[0].patch).toMatchObject({ phase: 'Failed', outcome: 'failed' }),
    ],
    [
      'agent failure with task.retries: 1: queued again with backoff, old Job deleted',
      (() => {
        const r = task('alpha', { retries: 1 });
        return state({ tasks: [r], runs: [run(r, { phase: 'Running' })], jobs: [job(rn(r), { active: 0, failed: 1 })], pods: [pod(rn(r), { phase: 'Failed', terminated: term('failed', 1) })] });
      })(),
      [`updateRun:${rn(task('alpha', { retries: 1 }))}`, `deleteJob:${rn(task('alpha', { retries: 1 }))}`],
      (acts) => expect(of(acts, 'updateRun')[0].patch).toMatchObject({ phase: 'Queued', attempt: 2, agentFailures: 1, notBefore: NOW + DEFAULT_SETTINGS.backoffBaseMs }),
    ],
    [
      'timed out (Job deadline): an agent failure, final without task.retries',
      state({ tasks: [a], runs: [run(a, { phase: 'Running' })], jobs: [job(rn(a), { active: 0, failed: 1, conditions: [{ type: 'Failed', status: 'True', reason: 'DeadlineExceeded' }] })] }),
      [`updateRun:${rn(a)}`],
      (acts) => expect(of(acts, 'updateRun')[0].patch).toMatchObject({ phase: 'Failed', outcome: 'timed_out' }),
    ],
    [
      'invalid spec reported by the runner: Failed at once, even with retries',
      (() => {
        const r = task('alpha', { retries: 3 });
        return state({ tasks: [r], runs: [run(r, { phase: 'Running' })], jobs: [job(rn(r), { active: 0, failed: 1 })], pods: [pod(rn(r), { phase: 'Failed', terminated: term('invalid_spec', 2) })] });
      })(),
      [`updateRun:${rn(task('alpha', { retries: 3 }))}`],
      (acts) => expect(of(acts, 'updateRun')[0].patch).toMatchObject({ phase: 'Failed', outcome: 'invalid_spec' }),
    ],
    [
      'pod evicted: infrastructure failure, retried with backoff (no task.retries needed), old Job deleted',
      state({ tasks: [a], runs: [run(a, { phase: 'Running' })], jobs: [job(rn(a), { active: 0, failed: 1 })], pods: [pod(rn(a), { phase: 'Failed', reason: 'Evicted' })] }),
      [`updateRun:${rn(a)}`, `deleteJob:${rn(a)}`],
      (acts) => {
        const p = of(acts, 'updateRun')[0].patch;
        expect(p).toMatchObject({ phase: 'Queued', attempt: 2, outcome: 'infrastructure', notBefore: NOW + 10_000 });
        expect(p.message).toMatch(/evicted/);
      },
    ],
    [
      'pod disrupted (DisruptionTarget) while the Job is still active: infrastructure failure',
      state({ tasks: [a], runs: [run(a, { phase: 'Running' })], jobs: [job(rn(a))], pods: [pod(rn(a), { disrupted: true })] }),
      [`updateRun:${rn(a)}`, `deleteJob:${rn(a)}`],
      (acts) => expect(of(acts, 'updateRun')[0].patch.phase).toBe('Queued'),
    ],
    [
      'image pull back-off: infrastructure failure',
      state({ tasks: [a], runs: [run(a, { phase: 'Running' })], jobs: [job(rn(a))], pods: [pod(rn(a), { phase: 'Pending', waiting: { reason: 'ImagePullBackOff', message: 'not found' } })] }),
      [`updateRun:${rn(a)}`, `deleteJob:${rn(a)}`],
      (acts) => expect(of(acts, 'updateRun')[0].patch.message).toMatch(/ImagePullBackOff/),
    ],
    [
      'runner terminated by SIGTERM (exit 5, e.g. node drain): infrastructure failure',
      state({ tasks: [a], runs: [run(a, { phase: 'Running' })], jobs: [job(rn(a), { active: 0, failed: 1 })], pods: [pod(rn(a), { phase: 'Failed', terminated: { exitCode: 5 } })] }),
      [`updateRun:${rn(a)}`, `deleteJob:${rn(a)}`],
      (acts) => expect(of(acts, 'updateRun')[0].patch).toMatchObject({ phase: 'Queued', outcome: 'infrastructure' }),
    ],
    [
      'infrastructure retries exhausted: Failed',
      state({ tasks: [a], runs: [run(a, { phase: 'Running', attempt: 4 })], jobs: [job(rn(a), { active: 0, failed: 1 })], pods: [pod(rn(a), { phase: 'Failed', reason: 'Evicted' })] }),
      [`updateRun:${rn(a)}`],
      (acts) => expect(of(acts, 'updateRun')[0].patch).toMatchObject({ phase: 'Failed', outcome: 'infrastructure', message: expect.stringMatching(/gave up after 3/) }),
    ],
    [
      'retry waits for the old Job to be gone',
      state({ tasks: [a], runs: [run(a, { attempt: 2, notBefore: NOW - 1 })], jobs: [job(rn(a), { deleting: true, active: 0, failed: 1 })] }),
      [],
      () => undefined,
    ],
    [
      'retry waits for its backoff, then wakes up',
      state({ tasks: [a], runs: [run(a, { attempt: 2, notBefore: NOW + 5000 })] }),
      [],
      () => undefined,
    ],
    [
      'retry past its backoff with the old Job gone: a new Job of the same name',
      state({ tasks: [a], runs: [run(a, { attempt: 2, notBefore: NOW - 1 })] }),
      [`createJob:${rn(a)}`, `updateRun:${rn(a)}`],
      (acts) => expect(of(acts, 'updateRun')[0].patch).toMatchObject({ phase: 'Running', notBefore: null }),
    ],
    [
      'pool at its concurrency limit: the oldest queued run starts, the others wait in the queue',
      state({ tasks: [a, b, c], pools: [pool({ concurrency: 2 })], runs: [run(a, { phase: 'Running' }), run(b), run(c)], jobs: [job(rn(a))] }),
      [`createJob:${rn(b)}`, `updateRun:${rn(b)}`],
      (acts) => expect(of(acts, 'setTaskStatus').find((s) => s.task === 'gamma')).toMatchObject({ phase: 'Queued' }),
    ],
    [
      'pool full: nothing starts',
      state({ tasks: [a, b], pools: [pool({ concurrency: 1 })], runs: [run(a, { phase: 'Running' }), run(b)], jobs: [job(rn(a))] }),
      [],
      () => undefined,
    ],
    [
      'deleted task: its run is removed and its warm lease cancelled',
      state({ tasks: [], runs: [run(a, { phase: 'Running', mode: 'warm' })], leases: [{ run: rn(a), id: 'L1', worker: 'w1', expiresAt: NOW + 5000 }] }),
      [`cancelLease:${rn(a)}`, `deleteRun:${rn(a)}`],
      () => undefined,
    ],
    [
      'unknown pool: no run, the task shows Pending with the reason',
      state({ tasks: [task('alpha', { pool: 'nope' })] }),
      [],
      (acts) => expect(of(acts, 'setTaskStatus')[0]).toMatchObject({ phase: 'Pending', message: expect.stringMatching(/pool "nope" does not exist/) }),
    ],
    [
      'invalid task.json: the task shows Invalid with every problem',
      state({ tasks: [{ name: 'bad', configMap: 'task-bad', createdAt: 1, problems: ['prompt: is required'] }] }),
      [],
      (acts) => expect(of(acts, 'setTaskStatus')[0]).toMatchObject({ phase: 'Invalid', message: 'prompt: is required' }),
    ],
    [
      'warm run whose lease expired: taken back and queued again (infrastructure)',
      state({ tasks: [a], pools: [pool({ mode: 'warm' })], runs: [run(a, { phase: 'Running', mode: 'warm' })], leases: [{ run: rn(a), id: 'L1', worker: 'w1', expiresAt: NOW - 1 }] }),
      [`cancelLease:${rn(a)}`, `updateRun:${rn(a)}`],
      (acts) => expect(of(acts, 'updateRun')[0].patch).toMatchObject({ phase: 'Queued', attempt: 2, message: expect.stringMatching(/worker w1 did not renew/) }),
    ],
    [
      'warm run with a live lease: nothing to do',
      state({ tasks: [a], pools: [pool({ mode: 'warm' })], runs: [run(a, { phase: 'Running', mode: 'warm' })], leases: [{ run: rn(a), id: 'L1', worker: 'w1', expiresAt: NOW + 1 }] }),
      [],
      () => undefined,
    ],
    [
      'task status already shown: no status write',
      state({ tasks: [{ ...a, shownPhase: 'Running', shownRun: rn(a) }], runs: [run(a, { phase: 'Running' })], jobs: [job(rn(a))] }),
      [],
      (acts) => expect(of(acts, 'setTaskStatus')).toHaveLength(0),
    ],
  ];

  test.each(cases)('%s', (_name, s, expected, check) => {
    const { actions } = reconcile(s, decodeTerminationMessage);
    expect(types(actions)).toEqual(expected);
    check(actions);
  });

  test('wakes up at the next backoff deadline or lease expiry', () => {
    expect(reconcile(state({ tasks: [a], runs: [run(a, { attempt: 2, notBefore: NOW + 5000 })] })).wakeAt).toBe(NOW + 5000);
    const warm = state({ tasks: [a], pools: [pool({ mode: 'warm' })], runs: [run(a, { phase: 'Running', mode: 'warm' })], leases: [{ run: rn(a), id: 'L', worker: 'w', expiresAt: NOW + 700 }] });
    expect(reconcile(warm).wakeAt).toBe(NOW + 700);
  });

  test('a second pass over the state after the first pass changes nothing (idempotent)', () => {
    const s = state({ tasks: [{ ...a, shownPhase: 'Running', shownRun: rn(a) }], runs: [run(a, { phase: 'Running' })], jobs: [job(rn(a))], pods: [pod(rn(a))] });
    expect(reconcile(s).actions).toEqual([]);
  });
});

describe('pickWarmRun: the queue a warm worker leases from', () => {
  const warm = pool({ mode: 'warm', concurrency: 2 });
  const runs = [run(c, { mode: 'warm' }), run(a, { mode: 'warm' }), run(b, { mode: 'warm', notBefore: NOW + 1 })];
  test('oldest first, skipping runs in backoff', () => {
    expect(pickWarmRun(state({ tasks: [a, b, c], pools: [warm], runs }), 'codex')?.task).toBe('alpha');
  });
  test('runs leased since the observation are skipped and count against concurrency', () => {
    expect(pickWarmRun(state({ tasks: [a, b, c], pools: [warm], runs }), 'codex', new Set([rn(a)]))?.task).toBe('gamma');
    expect(pickWarmRun(state({ tasks: [a, b, c], pools: [warm], runs }), 'codex', new Set([rn(a), rn(c)]))).toBeUndefined();
  });
  test('job-mode runs are never leased', () => {
    expect(pickWarmRun(state({ tasks: [a], pools: [warm], runs: [run(a)] }), 'codex')).toBeUndefined();
  });
  test('only from a warm pool: a pool switched to job mode leases none of its warm runs', () => {
    expect(pickWarmRun(state({ tasks: [a], pools: [pool({ mode: 'job' })], runs: [run(a, { mode: 'warm' })] }), 'codex')).toBeUndefined();
    expect(pickWarmRun(state({ tasks: [a], pools: [warm], runs: [run(a, { mode: 'warm' })] }), 'other-pool')).toBeUndefined();
  });
});

describe('priority: each pool runs higher priority first, then older first', () => {
  const low = task('low', { priority: 100 }, 1);
  const mid = task('mid', {}, 2); // 500, the default
  const high = task('high', { priority: 900 }, 3);
  const high2 = task('high-later', { priority: 900 }, 4);
  const all = [low, mid, high, high2];

  test('a job pool with room for one creates the Job of the highest priority, not the oldest', () => {
    const { actions } = reconcile(state({ tasks: all, pools: [pool({ concurrency: 1 })], runs: all.map((t) => run(t)) }));
    expect(of(actions, 'createJob').map((x) => x.task)).toEqual(['high']);
  });

  test('the queue order: priority descending, equal priorities oldest first', () => {
    const s = state({ tasks: all, runs: all.map((t) => run(t)) });
    expect(poolQueue(s, 'codex').map((r) => r.task)).toEqual(['high', 'high-later', 'mid', 'low']);
    expect([...all.map((t) => run(t))].sort(queueOrder(all)).map((r) => r.task)).toEqual(['high', 'high-later', 'mid', 'low']);
  });

  test('a warm worker leases the highest priority first', () => {
    const warm = pool({ mode: 'warm', concurrency: 1 });
    expect(pickWarmRun(state({ tasks: all, pools: [warm], runs: all.map((t) => run(t, { mode: 'warm' })) }), 'codex')?.task).toBe('high');
  });

  test('a retried run keeps its priority and its age: after its backoff it goes before newer, lower tasks', () => {
    const flaky = task('flaky', { priority: 800, retries: 1 }, 1);
    const attempt1 = run(flaky, { phase: 'Running', mode: 'warm' });
    const patch = afterAttempt(attempt1, flaky.spec, { kind: 'agent_failed', outcome: 'failed', message: 'exit 1' }, NOW, DEFAULT_SETTINGS);
    expect(patch).toMatchObject({ phase: 'Queued', attempt: 2 });
    const retried = { ...attempt1, phase: patch.phase!, attempt: patch.attempt!, notBefore: patch.notBefore! };
    const later = task('later', { priority: 500 }, 5);
    const warm = pool({ mode: 'warm', concurrency: 1 });
    const s = (now: number) => state({ now, tasks: [flaky, later], pools: [warm], runs: [retried, run(later, { mode: 'warm' })] });
    // In its backoff the newer task may go, but the retry keeps first place in the queue.
    expect(pickWarmRun(s(NOW), 'codex')?.task).toBe('later');
    expect(poolQueue(s(NOW), 'codex').map((r) => r.task)).toEqual(['flaky', 'later']);
    expect(pickWarmRun(s(patch.notBefore!), 'codex')?.task).toBe('flaky');
  });
});

describe('sessions: one task of a session at a time, in submission order', () => {
  const s1 = task('s-first', { session: { name: 'fix', create: true } }, 1);
  const s2 = task('s-second', { session: { name: 'fix' }, priority: 1000 }, 2);
  const other = task('other', {}, 3);
  test('a job pool starts the earlier task of the session only, whatever the priority; others go on', () => {
    const { actions } = reconcile(state({ tasks: [s1, s2, other], runs: [run(s1), run(s2), run(other)] }));
    expect(of(actions, 'createJob').map((x) => x.task)).toEqual(['s-first', 'other']);
  });
  test('a warm worker gets the session\'s next task only once the one before has ended', () => {
    const warm = pool({ mode: 'warm' });
    const runs = (p1: ObservedRun['phase']) => [run(s1, { mode: 'warm', phase: p1 }), run(s2, { mode: 'warm' })];
    expect(pickWarmRun(state({ tasks: [s1, s2], pools: [warm], runs: runs('Queued') }), 'codex')?.task).toBe('s-first');
    expect(pickWarmRun(state({ tasks: [s1, s2], pools: [warm], runs: runs('Running') }), 'codex')).toBeUndefined();
    expect(pickWarmRun(state({ tasks: [s1, s2], pools: [warm], runs: runs('Queued') }), 'codex', new Set([rn(s1)]))).toBeUndefined();
    expect(pickWarmRun(state({ tasks: [s1, s2], pools: [warm], runs: runs('Failed') }), 'codex')?.task).toBe('s-second');
    expect(sessionBlocker([s1, s2], runs('Running'), (r) => r.phase, runs('Running')[1])?.task).toBe('s-first');
  });

  describe('job pools: the next task\'s Job only once the run before has ended and its state is stored', () => {
    const stored = { name: 'fix', pool: 'codex' };
    const done = pod(rn(s1), { phase: 'Succeeded', terminated: term('succeeded', 0) });
    const runner = (job: any) => job.spec.template.spec.containers.find((c: any) => c.name === 'runner');
    const cases: Array<[string, ObservedState, string[]]> = [
      ['the first task of the session runs while the second waits', state({ tasks: [s1, s2], runs: [run(s1), run(s2)] }), ['s-first']],
      ['the first task is running: the second waits', state({ tasks: [s1, s2], runs: [run(s1, { phase: 'Running' }), run(s2)], jobs: [job(rn(s1))], sessions: [stored] }), []],
      [
        'the first task\'s Job completed in this pass: the second still waits (the state is saved as that end is recorded)',
        state({ tasks: [s1, s2], runs: [run(s1, { phase: 'Running' }), run(s2)], jobs: [job(rn(s1), { active: 0, succeeded: 1 })], pods: [done], sessions: [stored] }),
        [],
      ],
      ['the first run ended and the state is stored: the second task\'s Job', state({ tasks: [s1, s2], runs: [run(s1, { phase: 'Succeeded' }), run(s2)], sessions: [stored] }), ['s-second']],
      ['the first run failed: the second goes on from the state stored before', state({ tasks: [s1, s2], runs: [run(s1, { phase: 'Failed' }), run(s2)], sessions: [stored] }), ['s-second']],
      [
        'one task key at a time (a partial state): the run of another task of the session holds the lock',
        state({ tasks: [s2], runs: [run(s2)], sessions: [stored], sessionPeers: { tasks: [s1], runs: [run(s1, { phase: 'Running' })] } }),
        [],
      ],
      ['a partial state, the peer ended: the Job', state({ tasks: [s2], runs: [run(s2)], sessions: [stored], sessionPeers: { tasks: [s1], runs: [run(s1, { phase: 'Succeeded' })] } }), ['s-second']],
      [
        'a partial state, an earlier task of the session is still queued (its retry backoff): the later one waits',
        state({ tasks: [s2], runs: [run(s2)], sessions: [stored], sessionPeers: { tasks: [s1], runs: [run(s1, { notBefore: NOW + 1000 })] } }),
        [],
      ],
    ];
    test.each(cases)('%s', (_name, observed, started) => {
      expect(of(reconcile(observed, decodeTerminationMessage).actions, 'createJob').map((x) => x.task)).toEqual(started);
    });

    test('the Job of a task continuing a stored session mounts its state for the runner (--session-state); a new session\'s first Job mounts nothing', () => {
      const [next] = of(reconcile(state({ tasks: [s2], runs: [run(s2)], sessions: [stored] })).actions, 'createJob');
      const podSpec = (next.job.spec as any).template.spec;
      expect(podSpec.volumes).toContainEqual({ name: 'paddock-session', configMap: { name: 'session-fix', optional: true, items: [{ key: 'state.json', path: 'state.json' }] } });
      expect(runner(next.job)).toMatchObject({ args: ['run', '--session-state', '/etc/paddock/session/state.json'], volumeMounts: [{ name: 'paddock-session', mountPath: '/etc/paddock/session', readOnly: true }] });
      const [first] = of(reconcile(state({ tasks: [s1], runs: [run(s1)] })).actions, 'createJob');
      expect(runner(first.job).args).toEqual(['run']);
      expect(JSON.stringify(first.job)).not.toContain('session');
    });

    test.each([
      ['no stored session and no create', [], /session "fix" does not exist; set session.create: true on the task that starts it/],
      [
        'a broken session',
        [{ ...stored, broken: { task: 's-first', reason: 'it holds a key' } }],
        /session "fix" cannot be continued: the state of task "s-first" was not saved \(it holds a key\); delete it \(paddock sessions delete fix\) and start it again with session.create: true/,
      ],
      ['a session of another pool', [{ name: 'fix', pool: 'claude' }], /session "fix" belongs to pool "claude"; a task of pool "codex" cannot continue it/],
    ])('%s: the task fails at once, saying so (the check a warm lease makes)', (_name, sessions, message) => {
      const { actions } = reconcile(state({ tasks: [s2], runs: [run(s2)], sessions }));
      expect(of(actions, 'createJob')).toEqual([]);
      expect(of(actions, 'updateRun')[0].patch).toMatchObject({ phase: 'Failed', outcome: 'invalid_spec', message: expect.stringMatching(message) });
    });
  });
});

describe('afterAttempt: retries only for infrastructure, or when the task asks', () => {
  const r = run(a, { phase: 'Running' });
  test.each([
    ['succeeded', 'Succeeded'],
    ['failed', 'Failed'],
    ['timed_out', 'Failed'],
    ['source_failed', 'Failed'],
    ['terminated', 'Queued'],
    ['internal_error', 'Queued'],
  ])('runner outcome %s -> %s', (outcome, phase) => {
    const patch = afterAttempt(r, a.spec, { kind: outcome === 'succeeded' ? 'succeeded' : ['terminated', 'internal_error'].includes(outcome) ? 'infra_failed' : ['source_failed'].includes(outcome) ? 'final_failed' : 'agent_failed', outcome, message: 'x' } as any, NOW, DEFAULT_SETTINGS);
    expect(patch.phase).toBe(phase);
  });
  test('backoff doubles per infrastructure attempt, capped', () => {
    const at = (attempt: number) => afterAttempt(run(a, { phase: 'Running', attempt }), a.spec, { kind: 'infra_failed', message: 'x' }, NOW, { ...DEFAULT_SETTINGS, infraRetries: 10 }).notBefore;
    expect([at(1), at(2), at(3)].map((t) => (t as number) - NOW)).toEqual([10_000, 20_000, 40_000]);
    expect((at(10) as number) - NOW).toBe(300_000);
  });
});
