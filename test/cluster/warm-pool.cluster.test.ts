/**
 * Issue 11, item 3: a warm pool end to end on the real API server. dist/ applied; the
 * controller on the host as its ServiceAccount; two real `paddock worker` processes on the
 * host (what the pool-claude Deployment runs, with that pod's environment) lease from the
 * controller's worker lease API, and the one that gets the task runs the real Claude Code
 * CLI (test/agents) against the loopback mock model server. The run ConfigMap in the
 * cluster ends Succeeded with the agent's results, exactly once.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';
import { startMockModelServer } from '../support/mock-model-server';
import { AGENTS_BIN, FINAL_TEXT, PROOF_FILE, PROOF_TEXT } from '../runner/support/agent-e2e';
import { requireAgentCli } from '../support/agent-clis';
import { applyDist, Controller, deleteNamespace, DIST, get, kubectlOk, list, NS, paddock, Proc, serviceAccountKubeconfig, startController, until } from './support/cluster';

jest.setTimeout(300_000);

describe('a warm pool on a real API server: real paddock worker processes, the real claude CLI, a mock model server', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-warm-'));
  let ctl: Controller | undefined;
  const workers: Proc[] = [];

  afterAll(async () => {
    for (const w of workers) await w.stop();
    await ctl?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('two workers lease from the controller; one runs the task with claude; the run ConfigMap holds its results', async () => {
    requireAgentCli('claude');
    await deleteNamespace(NS);
    applyDist();
    // The example's declared claude task clones from github.com: this machine has no network.
    kubectlOk(['delete', 'configmap', '-n', NS, 'task-review-spoon-knife']);
    const { kubeconfig } = await serviceAccountKubeconfig(NS, 'paddock-controller', path.join(dir, 'controller.kubeconfig'));
    ctl = await startController(kubeconfig, 'ctl-warm');
    const mock = await startMockModelServer({ shellCommand: `echo '${PROOF_TEXT}' > ${PROOF_FILE}`, finalText: FINAL_TEXT });
    const secret = 'sk-ant-cluster-e2e-0123456789abcdef';
    try {
      // The warm worker pod's environment, as synthesized (the Secret's value filled in).
      const docs = parseAllDocuments(fs.readFileSync(DIST, 'utf8')).map((d) => d.toJSON()) as any[];
      const container = docs.find((d) => d?.kind === 'Deployment' && d.metadata.name === 'pool-claude').spec.template.spec.containers[0];
      expect(container.args).toEqual(['worker', '--pool', 'claude', '--controller', 'http://paddock-controller.paddock.svc:8081']);
      const podEnv: Record<string, string> = {};
      for (const e of container.env) podEnv[e.name] = e.value ?? (e.valueFrom?.secretKeyRef?.key === 'ANTHROPIC_API_KEY' ? secret : '');
      for (const id of ['claude-w1', 'claude-w2']) {
        const home = path.join(dir, id);
        fs.mkdirSync(home, { recursive: true });
        // The Deployment's args, with the host's address of the controller's worker lease API.
        workers.push(
          paddock(['worker', '--pool', 'claude', '--controller', ctl.workerUrl, '--id', id, '--work-dir', path.join(home, 'work'), '--wait', '2000'], {
            ...podEnv,
            HOME: home,
            PATH: [AGENTS_BIN, process.env.PATH].join(path.delimiter),
          }),
        );
      }
      const spec = {
        apiVersion: 'paddock.dev/v1alpha1',
        kind: 'Task',
        name: 'warm-e2e',
        pool: 'claude',
        harness: 'claude-code',
        model: 'claude-mock',
        prompt: `Create ${PROOF_FILE}, then report with a result block.`,
        env: { ANTHROPIC_BASE_URL: mock.url },
        timeoutSeconds: 180,
      };
      const res = await fetch(`${ctl.url}/v1/tasks`, { method: 'POST', body: JSON.stringify(spec) });
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
      expect(ctl.text().match(/leased by worker/g)).toHaveLength(1);
      // A warm pool makes no Job: the worker ran it.
      expect(await list(`/apis/batch/v1/namespaces/${NS}/jobs`, 'paddock.dev/task=warm-e2e')).toEqual([]);
      // The real CLI talked to the mock with the pool's credential, and no output shows it.
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
