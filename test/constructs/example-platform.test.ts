import { App, Chart } from 'cdk8s';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { synthesize } from '../../constructs';
import { examplePlatform } from '../../stacks/example-platform';
import { buildPlatform } from '../../stacks/platform-definition';
import { buildApp } from '../../stacks/cdk8s/main';
import { expectValidK8s, validateK8sObject } from '../support/k8s-schema';
import { find } from '../support/synth';

function synthExample() {
  const app = new App({ outdir: fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-')) });
  const chart = new Chart(app, 'paddock', { disableResourceNameHashes: true });
  buildPlatform(chart, 'platform', examplePlatform);
  return synthesize(chart);
}

describe('the example platform', () => {
  const objects = synthExample();

  test('has every part of the platform', () => {
    const kinds = objects.map((o) => `${o.kind}/${o.metadata?.name}`).sort();
    expect(kinds).toEqual(
      expect.arrayContaining([
        'Namespace/paddock',
        'NetworkPolicy/paddock-default-deny',
        'Deployment/paddock-controller',
        'ServiceAccount/paddock-controller',
        'Role/paddock-controller',
        'RoleBinding/paddock-controller',
        'Service/paddock-controller',
        'PodDisruptionBudget/paddock-controller',
        'RuntimeClass/gvisor',
        'Deployment/pool-codex',
        'Deployment/pool-claude',
        'ConfigMap/pool-codex',
        'ConfigMap/harness-codex',
        'ConfigMap/harness-claude-code',
        'ConfigMap/task-summarize-readme',
        'NetworkPolicy/egress-codex',
        'ConfigMap/egress-codex',
        'Deployment/egress-proxy-codex',
        'Service/egress-proxy-codex',
        'NetworkPolicy/egress-proxy-codex',
        'ServiceAccount/egress-proxy-codex',
        'Deployment/egress-proxy-claude',
      ]),
    );
    // The codex pool runs each task as a Job; the warm claude pool leases its task from the controller.
    expect(objects.filter((o) => o.kind === 'Job').map((o) => o.metadata?.labels?.['paddock.dev/task'])).toEqual(['summarize-readme']);
    expect(find(objects, 'Deployment', 'pool-codex').spec.replicas).toBe(0);
    expect(find(objects, 'Deployment', 'pool-claude').spec.replicas).toBe(1);
  });

  test('every object passes strict Kubernetes 1.30 schema validation', () => {
    expectValidK8s(objects);
  });

  test('the Job templates in pool ConfigMaps, filled, are valid Jobs too', () => {
    const { parse } = require('yaml');
    const { fillJobTemplate } = require('../../core/job-template');
    const template = parse(find(objects, 'ConfigMap', 'pool-codex').data['job-template.yaml']);
    const job = fillJobTemplate(
      template,
      { jobName: 'x-0123456789', task: 'x', taskConfigMap: 'task-x', harness: 'codex', harnessConfigMap: 'harness-codex', image: 'img:1', specHash: '0123456789' },
      60,
    );
    expect(validateK8sObject(job)).toEqual([]);
  });

  test('a typo in a field is caught by the strict validation', () => {
    const deployment = JSON.parse(JSON.stringify(find(objects, 'Deployment', 'pool-codex')));
    deployment.spec.template.spec.containers[0].imagePullPolicyy = 'Always';
    expect(validateK8sObject(deployment).join('\n')).toMatch(/imagePullPolicyy/);
  });

  test('every object carries the standard labels', () => {
    for (const o of objects) {
      expect(o.metadata?.labels).toMatchObject({
        'app.kubernetes.io/name': 'paddock',
        'app.kubernetes.io/part-of': 'paddock',
        'app.kubernetes.io/managed-by': 'paddock',
        'app.kubernetes.io/component': expect.any(String),
      });
    }
  });

  test('the namespace enforces Pod Security "restricted"', () => {
    expect(find(objects, 'Namespace', 'paddock').metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
  });

  test('Jobs carry no ttlSecondsAfterFinished, so GitOps tools never re-run them', () => {
    for (const job of objects.filter((o) => o.kind === 'Job')) {
      expect((job.spec as any).ttlSecondsAfterFinished).toBeUndefined();
    }
  });

  test('model keys stay in the model gateway, by secretKeyRef-free reference; agent pods get only a projected gateway token', () => {
    const pod = find(objects, 'Deployment', 'pool-codex').spec.template.spec;
    expect(JSON.stringify(pod)).not.toContain('openai-api');
    expect(pod.volumes).toContainEqual({ name: 'gateway-token', projected: { sources: [{ serviceAccountToken: { audience: 'paddock-model-gateway', expirationSeconds: 3600, path: 'token' } }] } });
    const gateway = find(objects, 'Deployment', 'paddock-model-gateway').spec.template.spec;
    expect(gateway.volumes).toContainEqual({ name: 'secret-openai-api', secret: { secretName: 'openai-api', items: [{ key: 'OPENAI_API_KEY', path: 'OPENAI_API_KEY' }], defaultMode: 0o440 } });
    const routes = JSON.parse(find(objects, 'ConfigMap', 'paddock-model-gateway').data['gateway.json']);
    expect(routes.pools.codex).toEqual({
      serviceAccount: 'system:serviceaccount:paddock:pool-codex',
      providers: { openai: { upstream: 'https://api.openai.com', header: 'authorization', value: 'Bearer {key}', keyFile: '/var/run/paddock/secrets/openai-api/OPENAI_API_KEY' } },
    });
    expect(JSON.parse(find(objects, 'ConfigMap', 'pool-codex').data['pool.json']).gateway).toEqual({
      url: 'http://paddock-model-gateway.paddock.svc:8080/codex',
      tokenFile: '/var/run/secrets/paddock/gateway/token',
      credentials: [{ env: 'OPENAI_API_KEY', provider: 'openai' }],
    });
    expect(objects.some((o) => o.kind === 'Secret')).toBe(false);
  });

  test('each pool reaches hosts only through its own egress proxy: registries and its git host (its provider only through the model gateway)', () => {
    const expected: Record<string, string> = {
      codex: 'acl allowed dstdomain -n github.com registry.npmjs.org pypi.org files.pythonhosted.org\n',
      claude: 'acl allowed dstdomain -n github.com registry.npmjs.org pypi.org files.pythonhosted.org\n',
    };
    for (const [pool, acl] of Object.entries(expected)) {
      expect(find(objects, 'ConfigMap', `egress-${pool}`).data['squid.conf']).toContain(acl);
      const env = find(objects, 'Deployment', `pool-${pool}`).spec.template.spec.containers[0].env;
      expect(env).toContainEqual({ name: 'HTTPS_PROXY', value: `http://egress-proxy-${pool}.paddock.svc:3128` });
      expect(JSON.parse(find(objects, 'ConfigMap', `pool-${pool}`).data['pool.json']).egress.proxy).toBe(`http://egress-proxy-${pool}.paddock.svc:3128`);
      const policy = find(objects, 'NetworkPolicy', `egress-${pool}`);
      expect(policy.spec.egress.flatMap((r: any) => r.to)).not.toContainEqual(expect.objectContaining({ ipBlock: expect.anything() }));
    }
  });

  test('the controller Role names every verb and resource (no wildcards)', () => {
    const role = find(objects, 'Role', 'paddock-controller');
    expect(JSON.stringify(role.rules)).not.toContain('*');
    expect(role.rules).toContainEqual({ apiGroups: ['batch'], resources: ['jobs'], verbs: ['get', 'list', 'watch', 'create', 'delete'] });
  });

  test('two synths of the same app are byte-identical', () => {
    const a = buildApp(fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-a-'))).synthYaml();
    const b = buildApp(fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-b-'))).synthYaml();
    expect(a.length).toBeGreaterThan(10000);
    expect(a).toEqual(b);
  });
});
