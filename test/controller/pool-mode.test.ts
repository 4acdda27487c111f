/** What the constructs synthesize for the controller: pool modes, concurrency, leader election; and run records. */
import { AgentPool, AgentTask, Harness } from '../../constructs';
import { capResult, TRUNCATION_MARKER } from '../../controller/observe';
import { find, keyedPool, newPlatform, synth } from '../support/synth';
import { decodeTerminationMessage, encodeTerminationMessage, MAX_RESULT_BYTES, TERMINATION_MESSAGE_LIMIT } from '../../core/protocol';

describe('AgentPool mode', () => {
  test('default "job": pool.json says so, the worker Deployment stays at 0, declared tasks get their Job', () => {
    const { chart, platform } = newPlatform();
    const pool = keyedPool(platform, 'codex', { harnesses: [Harness.codex()] });
    new AgentTask(platform, 't', { pool, prompt: 'x' });
    const objects = synth(chart);
    expect(JSON.parse(find(objects, 'ConfigMap', 'pool-codex').data['pool.json'])).toMatchObject({ mode: 'job', concurrency: 10 });
    expect(find(objects, 'Deployment', 'pool-codex').spec.replicas).toBe(0);
    expect(objects.filter((o) => o.kind === 'Job')).toHaveLength(1);
    expect(objects.some((o) => o.kind === 'NetworkPolicy' && o.metadata?.name === 'pool-codex-controller')).toBe(false);
  });

  test('"warm": replicas workers that may reach the controller\'s worker lease API only; declared tasks get no Job (the workers run them)', () => {
    const { chart, platform } = newPlatform();
    const pool = keyedPool(platform, 'codex', { harnesses: [Harness.codex()], mode: 'warm', replicas: 3, concurrency: 2 });
    new AgentTask(platform, 't', { pool, prompt: 'x' });
    const objects = synth(chart);
    expect(JSON.parse(find(objects, 'ConfigMap', 'pool-codex').data['pool.json'])).toMatchObject({ mode: 'warm', concurrency: 2 });
    const deployment = find(objects, 'Deployment', 'pool-codex');
    expect(deployment.spec.replicas).toBe(3);
    expect(deployment.spec.template.spec.containers[0].args).toEqual(['worker', '--pool', 'codex', '--controller', 'http://paddock-controller.paddock.svc:8081', '--isolation', 'container', '--wipe', '/tmp', '--wipe', '/home/agent']);
    expect(objects.filter((o) => o.kind === 'Job')).toHaveLength(0);
    const np = find(objects, 'NetworkPolicy', 'pool-codex-controller');
    expect(np.spec.podSelector.matchLabels['app.kubernetes.io/component']).toBe('worker');
    expect(np.spec.egress).toEqual([
      { to: [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'paddock', 'app.kubernetes.io/instance': 'paddock', 'app.kubernetes.io/component': 'controller' } } }], ports: [{ protocol: 'TCP', port: 8081 }] },
    ]);
  });

  test.each([
    ['an unknown mode', () => keyedPool(newPlatform().platform, 'p', { harnesses: [Harness.codex()], mode: 'batch' as any }), /mode "batch" is unknown; write mode: "job"/],
    ['replicas on an explicit job pool', () => keyedPool(newPlatform().platform, 'p', { harnesses: [Harness.codex()], mode: 'job', replicas: 2 }), /set mode: "warm" to keep 2 warm workers/],
    ['zero concurrency', () => keyedPool(newPlatform().platform, 'p', { harnesses: [Harness.codex()], concurrency: 0 }), /concurrency: must be an integer from 1 to 10000, got 0/],
    [
      'createJob on a warm pool',
      () => {
        const { platform } = newPlatform();
        const pool = keyedPool(platform, 'p', { harnesses: [Harness.codex()], mode: 'warm' });
        new AgentTask(platform, 't', { pool, prompt: 'x', createJob: true });
      },
      /a Job would run it a second time/,
    ],
    ['retries out of range', () => {
      const { platform } = newPlatform();
      new AgentTask(platform, 't', { pool: keyedPool(platform, 'p', { harnesses: [Harness.codex()] }), prompt: 'x', retries: 11 });
    }, /retries: must be an integer from 0 to 10, got 11/],
  ])('%s fails with a fix', (_n, make, message) => {
    expect(make).toThrow(message);
  });

  test('controller replicas > 1 run with --leader-elect (and the Role gets leases)', () => {
    const { chart, platform } = newPlatform({ controller: { replicas: 2 } });
    keyedPool(platform, 'codex', { harnesses: [Harness.codex()] });
    const objects = synth(chart);
    expect(find(objects, 'Deployment', 'paddock-controller').spec.template.spec.containers[0].args).toContain('--leader-elect');
    expect(find(objects, 'Role', 'paddock-controller').rules).toContainEqual({ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] });
    const single = newPlatform();
    keyedPool(single.platform, 'codex', { harnesses: [Harness.codex()] });
    expect(find(synth(single.chart), 'Deployment', 'paddock-controller').spec.template.spec.containers[0].args).not.toContain('--leader-elect');
  });
});

describe('run records: size caps with a clear truncation marker', () => {
  test('results over the cap: whole lines kept, then a marker line; status.json says resultsTruncated', () => {
    const line = JSON.stringify({ blob: 'x'.repeat(1000) });
    const r = capResult({ status: { outcome: 'succeeded' }, resultsJsonl: Array(1000).fill(line).join('\n') + '\n' });
    expect(r.truncated).toBe(true);
    expect(Buffer.byteLength(r.statusJson) + Buffer.byteLength(r.resultsJsonl)).toBeLessThanOrEqual(MAX_RESULT_BYTES);
    const lines = r.resultsJsonl.trim().split('\n').map((l) => JSON.parse(l));
    const marker = lines.pop();
    expect(marker).toMatchObject({ [TRUNCATION_MARKER]: true, omittedResults: 1000 - lines.length, keptResults: lines.length });
    expect(lines.every((l) => l.blob.length === 1000)).toBe(true);
    expect(JSON.parse(r.statusJson)).toMatchObject({ resultsTruncated: true });
  });

  test('small results are kept as they are', () => {
    expect(capResult({ status: { outcome: 'succeeded' }, resultsJsonl: '{"a":1}\n' })).toMatchObject({ truncated: false, resultsJsonl: '{"a":1}\n' });
  });

  test('the termination message fits 4096 bytes, cutting whole result lines and saying so', () => {
    const results = Array(100).fill(JSON.stringify({ note: 'y'.repeat(100) })).join('\n');
    const msg = encodeTerminationMessage({ outcome: 'succeeded', runnerExitCode: 0, message: 'm'.repeat(5000), timings: { total: 1 } }, results);
    expect(Buffer.byteLength(msg)).toBeLessThanOrEqual(TERMINATION_MESSAGE_LIMIT);
    const decoded = decodeTerminationMessage(msg)!;
    expect(decoded.truncated).toBe(true);
    expect(decoded.status).toMatchObject({ outcome: 'succeeded', runnerExitCode: 0 });
    expect(decoded.resultsJsonl.trim().split('\n').length).toBeGreaterThan(10);
    expect(decodeTerminationMessage('plain text from a crashed container')).toBeUndefined();
  });
});
