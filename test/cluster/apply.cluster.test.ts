/**
 * Issue 11, item 1, on the real API server: dist/ of the example (npm run synth) applies
 * with `kubectl apply --server-side --validate=strict`; the namespace enforces Pod Security
 * "restricted" by its labels and admits every Paddock pod; a pod that breaks "restricted"
 * is refused (admission is really on).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';
import { api, applyDist, deleteNamespace, DIST, get, kubectl, list, logTail, NS, until } from './support/cluster';

jest.setTimeout(240_000);

const docs = () => parseAllDocuments(fs.readFileSync(DIST, 'utf8')).map((d) => d.toJSON()).filter(Boolean) as any[];

describe('dist/ on a real API server (kube-apiserver v1.36 from Go modules; pods run by kwok, a fake kubelet)', () => {
  beforeAll(async () => {
    await deleteNamespace(NS);
  });

  test('kubectl apply --server-side --validate=strict of dist/ creates every object, and applying it again changes nothing', async () => {
    const out = applyDist();
    const objects = docs();
    expect(out.trim().split('\n')).toHaveLength(objects.length);
    expect(out).not.toMatch(/warning/i);
    for (const o of objects) {
      const group = o.apiVersion.includes('/') ? `/apis/${o.apiVersion}` : `/api/${o.apiVersion}`;
      const plural = { NetworkPolicy: 'networkpolicies', PodDisruptionBudget: 'poddisruptionbudgets', RuntimeClass: 'runtimeclasses' }[o.kind as string] ?? `${o.kind.toLowerCase()}s`;
      const url = o.metadata.namespace ? `${group}/namespaces/${o.metadata.namespace}/${plural}/${o.metadata.name}` : `${group}/${plural}/${o.metadata.name}`;
      const live = await get(url);
      expect(live).toBeDefined();
      // Owned by the GitOps field manager (server-side apply), not by a client-side last-applied annotation.
      expect(live.metadata.managedFields.some((m: any) => m.manager === 'paddock-gitops' && m.operation === 'Apply')).toBe(true);
      expect(live.metadata.annotations?.['kubectl.kubernetes.io/last-applied-configuration']).toBeUndefined();
    }
    // A second apply of the same files: every object unchanged (deterministic output, no drift).
    const again = kubectl(['diff', '--server-side', '--field-manager=paddock-gitops', '-f', DIST]);
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
  });

  test('strict field validation is really on: an unknown field in a Paddock manifest is refused by the API server', () => {
    const objects = docs();
    const deployment = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'paddock-controller');
    deployment.spec.template.spec.containers[0].imagePullPolicyy = 'Always';
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-strict-')), 'bad.yaml');
    fs.writeFileSync(file, JSON.stringify(deployment));
    const r = kubectl(['apply', '--server-side', '--field-manager=paddock-gitops', '--validate=strict', '--dry-run=server', '-f', file]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/imagePullPolicyy: field not declared in schema/);
  });

  test('the namespace enforces Pod Security "restricted" by its labels, and every Paddock pod is admitted and scheduled', async () => {
    const ns = await get(`/api/v1/namespaces/${NS}`);
    expect(ns.metadata.labels).toMatchObject({ 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/warn': 'restricted', 'pod-security.kubernetes.io/audit': 'restricted' });
    const deployments = docs().filter((o) => o.kind === 'Deployment');
    expect(deployments.length).toBeGreaterThan(3);
    for (const d of deployments) {
      const want = d.spec.replicas ?? 1;
      await until(
        `Deployment ${d.metadata.name}: ${want} pod(s) Running`,
        async () => {
          const live = await get(`/apis/apps/v1/namespaces/${NS}/deployments/${d.metadata.name}`);
          return (live.status?.readyReplicas ?? 0) === want && (want > 0 || live.status?.observedGeneration >= 1);
        },
        90_000,
        () => logTail('kube-controller-manager'),
      );
    }
    // The declared task's Job (a job pool) got its pod too.
    const job = docs().find((o) => o.kind === 'Job');
    await until(`Job ${job.metadata.name}: a pod`, async () => (await list(`/api/v1/namespaces/${NS}/pods`, `batch.kubernetes.io/job-name=${job.metadata.name}`)).length === 1, 60_000);
    const pods = await list(`/api/v1/namespaces/${NS}/pods`);
    expect(pods.length).toBe(deployments.reduce((n, d) => n + (d.spec.replicas ?? 1), 0) + 1);
    for (const p of pods) {
      expect(p.spec.nodeName).toBe('kwok-node-0');
      expect(p.metadata.annotations?.['kubernetes.io/psp']).toBeUndefined();
    }
    // No controller was refused a pod: no FailedCreate events in the namespace.
    const events = await list(`/api/v1/namespaces/${NS}/events`);
    expect(events.filter((e) => e.reason === 'FailedCreate').map((e) => e.message)).toEqual([]);
  });

  test('a pod that breaks "restricted" is refused by PodSecurity admission', async () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'breaks-restricted', namespace: NS },
      spec: { containers: [{ name: 'c', image: 'busybox', securityContext: { privileged: true } }] },
    };
    const r = await api('POST', `/api/v1/namespaces/${NS}/pods`, pod);
    expect(r.status).toBe(403);
    expect(r.body.message).toMatch(/violates PodSecurity "restricted:v1\.30": privileged/);
    expect(r.body.message).toMatch(/allowPrivilegeEscalation != false/);
    expect(r.body.message).toMatch(/runAsNonRoot != true/);
    expect(r.body.message).toMatch(/seccompProfile/);
    // The same pod is admitted where nothing is enforced: it is the namespace's labels that refuse it.
    await api('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'paddock-psa-control' } });
    await until('ServiceAccount default in paddock-psa-control', async () => (await api('GET', '/api/v1/namespaces/paddock-psa-control/serviceaccounts/default')).status === 200);
    const elsewhere = await api('POST', '/api/v1/namespaces/paddock-psa-control/pods?dryRun=All', { ...pod, metadata: { name: 'breaks-restricted', namespace: 'paddock-psa-control' } });
    expect(elsewhere.status).toBe(201);
    await deleteNamespace('paddock-psa-control');
  });
});
