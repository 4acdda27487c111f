/**
 * The cluster's publish step: the Publisher construct's Job template, filled by the
 * controller's job deliverer, run by a thin fake kubelet (in the test's name) that
 * materializes the Job's ConfigMap and Secret volumes from the in-memory store and runs
 * the real `paddock publish` on them against a real HTTPS git server with receive-pack.
 */
import * as fs from 'fs';
import * as path from 'path';
import { gzipSync } from 'zlib';
import { parse as parseYaml } from 'yaml';
import { main } from '../../cli/main';
import { AgentPool, CredentialSecret, Harness } from '../../constructs';
import { resolveDelivery } from '../../core/delivery';
import { jobDeliverer } from '../../controller/publish-jobs';
import { MemoryStore, KubeObject } from '../../controller/store';
import { standardLabels } from '../../core/labels';
import { stableJson } from '../../core/stable-json';
import type { TaskSpec } from '../../policy/specs';
import { GitServer, startGitServer } from '../support/git-server';
import { find, newPlatform, synth } from '../support/synth';
import { git, makeChangeRepo, makeTmpDir } from '../support/runner-fixtures';

const PUSHER = { username: 'robot', password: 'push-token-job-1a2b3c4d5e' };
let server: GitServer;
let root: string;
let base: string;

beforeAll(async () => {
  root = makeTmpDir('paddock-publish-job-');
  base = makeChangeRepo(path.join(root, 'repos'), 'acme/work');
  server = await startGitServer({ root: path.join(root, 'repos'), tls: true, push: PUSHER });
});
afterAll(async () => {
  await server.close();
});

/** The Publisher's objects as synthesized. */
function publisherObjects() {
  const { chart, platform } = newPlatform();
  const pool = new AgentPool(platform, 'codex', { harnesses: [Harness.codex()], env: { OPENAI_API_KEY: 'from-the-gateway' } });
  CredentialSecret.fromSecretName(platform, 'push', 'gh-push', ['token']).grantPushTo(pool, { host: 'github.com', key: 'token' });
  return synth(chart);
}

test('synthesized: a tokenless ServiceAccount, a hardened publish Job template mounting just the one push key, no ingress, egress only through the publish allowlist', () => {
  const objects = publisherObjects();
  expect(find(objects, 'ServiceAccount', 'paddock-publisher').automountServiceAccountToken).toBe(false);
  const job = parseYaml(find(objects, 'ConfigMap', 'paddock-publisher').data['job-template.yaml']);
  const pod = job.spec.template.spec;
  expect(pod).toMatchObject({ serviceAccountName: 'paddock-publisher', automountServiceAccountToken: false, enableServiceLinks: false });
  expect(pod.containers[0].args).toEqual(['publish']);
  expect(pod.containers[0].securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
  expect(pod.volumes.find((v: any) => v.name === 'push').secret).toEqual({ secretName: '${PUSH_SECRET}', items: [{ key: '${PUSH_KEY}', path: '${PUSH_KEY}' }], defaultMode: 0o440 });
  const np = find(objects, 'NetworkPolicy', 'paddock-publisher');
  expect(np.spec).toMatchObject({ policyTypes: ['Ingress', 'Egress'], ingress: [], egress: [] });
  // The hosts themselves: test/constructs/delivery.test.ts (the publish allowlist).
  expect(job.spec.template.metadata.labels['egress.paddock.dev/publish']).toBe('allow');
});

test('the job deliverer creates the publish Job and reads its status (thin fake kubelet running the real paddock publish)', async () => {
  const objects = publisherObjects();
  const store = new MemoryStore('paddock');
  store.createSync(find(objects, 'ConfigMap', 'paddock-publisher'));
  const task: TaskSpec = { apiVersion: 'paddock.dev/v1alpha1', kind: 'Task', name: 'fix', pool: 'codex', harness: 'codex', prompt: 'p', sources: [{ name: 'work', type: 'git_https', url: server.repoUrl('acme/work'), branch: 'main' }], delivery: { branch: 'paddock/job', commitMessage: 'From the publish Job' } };
  const push = [{ host: server.host, secret: 'gh-push', key: 'token', username: PUSHER.username }];
  const patch = Buffer.from('diff --git a/new.txt b/new.txt\nnew file mode 100644\n--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1 @@\n+from the job\n');
  const cm = (name: string, data: Record<string, string>, binaryData?: Record<string, string>): KubeObject => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels: standardLabels('paddock', 'run') }, data, ...(binaryData ? { binaryData } : {}) });
  store.createSync(cm('task-fix', { 'task.json': stableJson(task) }));
  store.createSync(cm('pool-codex', { 'pool.json': stableJson({ apiVersion: 'paddock.dev/v1alpha1', kind: 'Pool', name: 'codex', capabilities: ['harness.codex'], harnesses: ['codex'], push }) }));
  store.createSync(cm('run-fix-abc', { 'status.json': stableJson({ outcome: 'succeeded', changes: [{ source: 'work', base, files: 1, insertions: 1, deletions: 0, bytes: patch.length }] }) }, { 'patch-work.gz': gzipSync(patch).toString('base64') }));
  const secrets: Record<string, Record<string, string>> = { 'gh-push': { token: PUSHER.password } };

  // The fake kubelet: for each new publish Job, mount its volumes and run `paddock publish`.
  await store.watch('Job', 'app.kubernetes.io/component=publish', (event, job) => {
    if (event !== 'add') return;
    void (async () => {
      const dir = makeTmpDir('paddock-kubelet-');
      const pod = (job.spec as any).template.spec;
      const container = pod.containers[0];
      const args: string[] = [];
      for (const m of container.volumeMounts) {
        const vol = pod.volumes.find((v: any) => v.name === m.name);
        const at = path.join(dir, m.mountPath);
        fs.mkdirSync(at, { recursive: true });
        if (vol.configMap) {
          const src = (await store.get('ConfigMap', vol.configMap.name))!;
          for (const [k, v] of Object.entries((src.data ?? {}) as Record<string, string>)) fs.writeFileSync(path.join(at, k), v);
          for (const [k, v] of Object.entries((src.binaryData ?? {}) as Record<string, string>)) fs.writeFileSync(path.join(at, k), Buffer.from(v, 'base64'));
        }
        if (vol.secret) for (const item of vol.secret.items) fs.writeFileSync(path.join(at, item.path), secrets[vol.secret.secretName][item.key]);
        const flag = { '/etc/paddock/task': '--task', '/etc/paddock/pool': '--pool', '/etc/paddock/run': '--run', '/workspace': '--work-dir' }[m.mountPath as string];
        if (flag) args.push(flag, at);
      }
      args.push('--secrets', path.join(dir, 'var/run/paddock/push'));
      const out: string[] = [];
      const code = await main(['publish', ...args], { stdout: (t) => out.push(t), stderr: () => undefined }, { PATH: process.env.PATH, GIT_SSL_CAINFO: server.caFile });
      store.createSync({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `${job.metadata.name}-x`, labels: { 'batch.kubernetes.io/job-name': job.metadata.name } }, status: { phase: code === 0 ? 'Succeeded' : 'Failed', containerStatuses: [{ name: 'publish', state: { terminated: { exitCode: code, message: out.join('').trim() } } }] } });
    })();
  });

  const deliver = jobDeliverer(store, { timeoutMs: 60_000 });
  const status = await deliver({ run: 'fix-abc', task, delivery: resolveDelivery(task, push)!, base, patch });
  expect(status).toMatchObject({ state: 'pushed', branch: 'paddock/job' });
  const job = store.list('Job')[0];
  expect(job.metadata.name).toBe('publish-fix-abc');
  const spec = (job.spec as any).template.spec;
  expect(spec.volumes.find((v: any) => v.name === 'run').configMap.name).toBe('run-fix-abc');
  expect(spec.volumes.find((v: any) => v.name === 'push').secret).toMatchObject({ secretName: 'gh-push', items: [{ key: 'token', path: 'token' }] });
  expect(git(path.join(root, 'repos', 'acme', 'work.git'), 'log', '-1', '--format=%s', 'paddock/job')).toBe('From the publish Job');
});

test('without the publisher ConfigMap the delivery fails, saying what to do', async () => {
  const deliver = jobDeliverer(new MemoryStore('paddock'));
  const task: TaskSpec = { apiVersion: 'paddock.dev/v1alpha1', kind: 'Task', name: 'fix', pool: 'codex', harness: 'codex', prompt: 'p', sources: [{ name: 'work', type: 'git_https', url: 'https://github.com/a/b.git' }], delivery: { branch: 'x' } };
  const status = await deliver({ run: 'r', task, delivery: resolveDelivery(task, [{ host: 'github.com', secret: 's', key: 'k' }])!, base: 'b', patch: Buffer.from('x') });
  expect(status).toMatchObject({ state: 'failed', reason: expect.stringMatching(/no ConfigMap paddock-publisher with job-template.yaml: grant a push credential \(credential.grantPushTo/) });
});
