/**
 * Issue 11, item 3: a warm pool end to end on the real API server. dist/ applied; the
 * controller on the host as its ServiceAccount; two real `paddock worker` processes on the
 * host (what the pool-claude Deployment runs, with that pod's environment) lease from the
 * controller's worker lease API, each in a PID namespace standing in for its container (the
 * Deployment's --isolation container). The one that gets the task runs the real Claude Code
 * CLI (test/agents) through `paddock gateway` (on the host, as its ServiceAccount, holding
 * the key) to the loopback mock model server. The run ConfigMap in the cluster ends
 * Succeeded with the agent's results, exactly once.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';
import { startMockModelServer } from '../support/mock-model-server';
import { AGENTS_BIN, FINAL_TEXT, PROOF_FILE, PROOF_TEXT } from '../runner/support/agent-e2e';
import { requireAgentCli } from '../support/agent-clis';
import { applyDist, CONTAINER_PID_NAMESPACE, Controller, deleteNamespace, DIST, get, HostGateway, kubectlOk, list, NS, paddock, poolToken, Proc, startHostGateway, serviceAccountKubeconfig, startController, until, taskApiHeaders, workerTokenFile } from './support/cluster';

jest.setTimeout(300_000);

describe('a warm pool on a real API server: real paddock worker processes, the real claude CLI, a mock model server', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-warm-'));
  let ctl: Controller | undefined;
  let gateway: HostGateway | undefined;
  const workers: Proc[] = [];

  afterAll(async () => {
    for (const w of workers) await w.stop();
    await ctl?.stop();
    await gateway?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('two workers lease from the controller; one runs the task with claude; the run ConfigMap holds its results', async () => {
    requireAgentCli('claude');
    await deleteNamespace(NS);
    applyDist();
    // The example's declared claude task clones from github.com: this machine has no network.
    kubectlOk(['delete', 'configmap', '-n', NS, 'task-review-spoon-knife']);
    const mock = await startMockModelServer({ shellCommand: `echo '${PROOF_TEXT}' > ${PROOF_FILE}`, finalText: FINAL_TEXT });
    const secret = 'sk-ant-cluster-e2e-0123456789abcdef';
    // The model gateway holds the pool's key (the worker pods have none), on the host.
    gateway = await startHostGateway(dir, mock.url, { anthropic: secret });
    // The pool's agents reach it as in a pod: its URL and their projected token (here a
    // TokenRequest token for the gateway's audience in a file). The in-cluster URL and path
    // cannot work on the host, so the test points the pool's spec at them (its only edit).
    const gatewayTokenFile = path.join(dir, 'gateway-token');
    fs.writeFileSync(gatewayTokenFile, await poolToken('claude', ['paddock-model-gateway']), { mode: 0o600 });
    const poolCm = await get(`/api/v1/namespaces/${NS}/configmaps/pool-claude`);
    const poolSpec = JSON.parse(poolCm.data['pool.json']);
    expect(poolSpec.gateway).toMatchObject({ url: 'http://paddock-model-gateway.paddock.svc:8080/claude', credentials: [{ env: 'ANTHROPIC_API_KEY', provider: 'anthropic' }] });
    poolSpec.gateway = { ...poolSpec.gateway, url: `${gateway.url}/claude`, tokenFile: gatewayTokenFile };
    kubectlOk(['patch', 'configmap', '-n', NS, 'pool-claude', '--type', 'merge', '-p', JSON.stringify({ data: { 'pool.json': JSON.stringify(poolSpec) } })]);
    const { kubeconfig } = await serviceAccountKubeconfig(NS, 'paddock-controller', path.join(dir, 'controller.kubeconfig'));
    ctl = await startController(kubeconfig, 'ctl-warm');
    try {
      // The warm worker pod's environment, as synthesized (the Secret's value filled in).
      const docs = parseAllDocuments(fs.readFileSync(DIST, 'utf8')).map((d) => d.toJSON()) as any[];
      const container = docs.find((d) => d?.kind === 'Deployment' && d.metadata.name === 'pool-claude').spec.template.spec.containers[0];
      const controllerAt = container.args.indexOf('--controller') + 1;
      expect(container.args).toEqual(['worker', '--pool', 'claude', '--controller', 'http://paddock-controller.paddock.svc:8081', '--isolation', 'container', '--wipe', '/tmp', '--wipe', '/home/agent']);
      // No Secret in the worker's container: its env is plain values.
      expect(container.env.filter((e: any) => e.valueFrom)).toEqual([]);
      const podEnv: Record<string, string> = Object.fromEntries(container.env.map((e: any) => [e.name, e.value]));
      for (const id of ['claude-w1', 'claude-w2']) {
        const base = path.join(dir, id);
        const home = path.join(base, 'home');
        const tmp = path.join(base, 'tmp');
        for (const d of [home, tmp]) fs.mkdirSync(d, { recursive: true });
        // The Deployment's args, with the host's address of the controller's worker lease API and
        // the pod's /tmp and HOME under the test's directory; each worker in a PID namespace of
        // its own standing in for its container (--isolation container kills what it sees there).
        const args = container.args.map((a: string, i: number) => (i === controllerAt ? ctl!.workerUrl : a === '/tmp' ? tmp : a === '/home/agent' ? home : a));
        const extra = ['--token-file', await workerTokenFile('claude', path.join(base, 'token')), '--id', id, '--work-dir', path.join(base, 'work'), '--wait', '2000'];
        workers.push(paddock([...args, ...extra], { ...podEnv, HOME: home, TMPDIR: tmp, PATH: [AGENTS_BIN, process.env.PATH].join(path.delimiter) }, undefined, CONTAINER_PID_NAMESPACE));
      }
      const spec = {
        apiVersion: 'paddock.dev/v1alpha1',
        kind: 'Task',
        name: 'warm-e2e',
        pool: 'claude',
        harness: 'claude-code',
        model: 'claude-mock',
        prompt: `Create ${PROOF_FILE}, then report with a result block.`,
        timeoutSeconds: 180,
      };
      const res = await fetch(`${ctl.url}/v1/tasks`, { method: 'POST', headers: await taskApiHeaders(), body: JSON.stringify(spec) });
      expect(res.status).toBe(201);
      const { run } = (await res.json()) as any;
      const debug = () => `--- controller\n${ctl!.text()}\n${workers.map((w, i) => `--- worker ${i + 1}\n${w.text()}`).join('\n')}`;
      const done = await until('the warm run to succeed', async () => {
        const cm = await get(`/api/v1/namespaces/${NS}/configmaps/run-${run}`);
        return ['Succeeded', 'Failed'].includes(cm?.metadata.labels['paddock.dev/phase']) && cm;
      }, 240_000, debug);
      expect(done.metadata.labels['paddock.dev/phase']).toBe('Succeeded');
      expect(done.data['results.jsonl'].trim().split('\n').map((l: string) => JSON.parse(l))).toEqual([{ status: 'ok', file: 'proof.txt' }]);
      expect(JSON.parse(done.data['status.json'])).toMatchObject({ outcome: 'succeeded', task: 'warm-e2e', pool: 'claude', harness: 'claude-code' });
      const leasedBy = /leased by worker (claude-w[12])/.exec(ctl.text());
      expect(leasedBy).not.toBeNull();
      // One lease: the controller logs "Running - attempt N leased by worker W" once per lease (the run message repeats the words in lifecycle logs).
      expect(ctl.text().match(/Running - attempt \d+ leased by worker/g)).toHaveLength(1);
      // A warm pool makes no Job: the worker ran it.
      expect(await list(`/apis/batch/v1/namespaces/${NS}/jobs`, 'paddock.dev/task=warm-e2e')).toEqual([]);
      // The real CLI talked to the mock through the gateway, which put the pool's key on; no output shows it.
      expect(mock.requests.some((q) => q.kind === 'tool_call')).toBe(true);
      expect(mock.requests.some((q) => q.kind === 'final')).toBe(true);
      expect(mock.requests.some((q) => JSON.stringify(q.headers).includes(secret))).toBe(true);
      expect(debug()).not.toContain(secret);
      expect(done.data['results.jsonl'] + done.data['status.json']).not.toContain(secret);
    } finally {
      await mock.close();
    }
  });
});
