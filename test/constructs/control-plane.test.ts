/**
 * What the Platform synthesizes for an authenticated control plane: the controller's
 * auth-delegator binding (TokenReview, SubjectAccessReview), ClusterRoles people can
 * be bound to, Event rights, the warm workers' audience-bound projected token, the
 * metrics port and an optional ServiceMonitor.
 */
import { AgentPool, AgentTask, CredentialSecret, Harness } from '../../constructs';
import { checkRbacNoWildcards } from '../../policy/rules';
import { WORKER_TOKEN_AUDIENCE, WORKER_TOKEN_PATH } from '../../core/protocol';
import { find, newPlatform, synth } from '../support/synth';

function platformWith(props: Parameters<typeof newPlatform>[0] = {}) {
  const { chart, platform } = newPlatform(props);
  const warm = new AgentPool(platform, 'codex', { harnesses: [Harness.codex()], mode: 'warm', replicas: 2 });
  const jobs = new AgentPool(platform, 'claude', { harnesses: [Harness.claudeCode()] });
  CredentialSecret.fromSecretName(platform, 'openai', 'openai-api', ['OPENAI_API_KEY']).grantTo(warm);
  CredentialSecret.fromSecretName(platform, 'anthropic', 'anthropic-api', ['ANTHROPIC_API_KEY']).grantTo(jobs);
  new AgentTask(platform, 'hello', { pool: jobs, prompt: 'x' });
  new AgentTask(platform, 'warm-hello', { pool: warm, prompt: 'x' });
  return synth(chart);
}

describe('Platform: the control plane authenticates and authorizes with the API server', () => {
  test('the controller may create TokenReviews and SubjectAccessReviews (system:auth-delegator)', () => {
    const binding = find(platformWith(), 'ClusterRoleBinding', 'paddock-controller-paddock-auth-delegator');
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'paddock-controller', namespace: 'paddock' }]);
  });

  test('ClusterRoles paddock-task-submitter and paddock-task-viewer on tasks.paddock.dev, named verbs only', () => {
    const objects = platformWith();
    const submitter = find(objects, 'ClusterRole', 'paddock-task-submitter');
    const viewer = find(objects, 'ClusterRole', 'paddock-task-viewer');
    expect(submitter.rules).toEqual([{ apiGroups: ['paddock.dev'], resources: ['tasks', 'tasks/results', 'tasks/sessions'], verbs: ['create', 'get', 'list', 'delete'] }]);
    expect(viewer.rules).toEqual([{ apiGroups: ['paddock.dev'], resources: ['tasks', 'tasks/results', 'tasks/sessions'], verbs: ['get', 'list'] }]);
    for (const o of objects.filter((x) => x.kind === 'Role' || x.kind === 'ClusterRole')) expect(checkRbacNoWildcards(o)).toEqual([]);
  });

  test('ClusterRole paddock-controller-port-forward: what paddock tasks needs through a kubeconfig, named verbs only', () => {
    const role = find(platformWith(), 'ClusterRole', 'paddock-controller-port-forward');
    expect(role.rules).toEqual([
      { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
      { apiGroups: [''], resources: ['pods/portforward'], verbs: ['get', 'create'] },
    ]);
    expect(checkRbacNoWildcards(role)).toEqual([]);
  });

  test("the controller's Role may create events.k8s.io Events (lifecycle Events on task ConfigMaps)", () => {
    const role = find(platformWith(), 'Role', 'paddock-controller');
    expect(role.rules).toContainEqual({ apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create'] });
  });

  test("warm workers get a projected token of their pool's ServiceAccount for Paddock's audience; Jobs and job pools get none", () => {
    const objects = platformWith();
    const warm = find(objects, 'Deployment', 'pool-codex').spec.template.spec;
    expect(warm.serviceAccountName).toBe('pool-codex');
    expect(warm.automountServiceAccountToken).toBe(false);
    const workerToken = (v: any) => v.projected?.sources.some((src: any) => src.serviceAccountToken?.audience === WORKER_TOKEN_AUDIENCE);
    const volume = warm.volumes.find(workerToken);
    expect(volume.projected.sources).toEqual([{ serviceAccountToken: { audience: WORKER_TOKEN_AUDIENCE, expirationSeconds: 600, path: 'token' } }]);
    expect(volume.projected.defaultMode).toBe(0o400);
    expect(warm.containers[0].volumeMounts).toContainEqual({ name: volume.name, mountPath: WORKER_TOKEN_PATH.replace(/\/token$/, ''), readOnly: true });
    const tokenless = [find(objects, 'Deployment', 'pool-claude').spec.template.spec, ...objects.filter((o) => o.kind === 'Job').map((j: any) => j.spec.template.spec)];
    expect(tokenless.length).toBeGreaterThan(1);
    // (Agent pods carry the model gateway's token, for another audience: not one the lease API takes.)
    for (const pod of tokenless) expect((pod.volumes ?? []).filter(workerToken)).toEqual([]);
  });

  test('two replicas: followers learn the leader from the Lease (PADDOCK_POD_IP) and may reach its API ports', () => {
    const objects = platformWith({ controller: { replicas: 2 } });
    const deployment = find(objects, 'Deployment', 'paddock-controller');
    expect(deployment.spec.template.spec.containers[0].env).toContainEqual({ name: 'PADDOCK_POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } });
    const policy = find(objects, 'NetworkPolicy', 'paddock-controller').spec;
    const selector = deployment.spec.selector.matchLabels;
    expect(policy.egress).toContainEqual({ to: [{ podSelector: { matchLabels: selector } }], ports: [8080, 8081].map((port) => ({ protocol: 'TCP', port })) });
    const workerRule = policy.ingress.find((r: any) => r.ports.some((p: any) => p.port === 8081));
    expect(workerRule.from).toContainEqual({ podSelector: { matchLabels: selector } });
    // One replica: no PADDOCK_POD_IP.
    expect(find(platformWith(), 'Deployment', 'paddock-controller').spec.template.spec.containers[0].env.map((e: any) => e.name)).not.toContain('PADDOCK_POD_IP');
  });
});

describe('Platform: metrics', () => {
  test('/metrics on port 9090 (container, Service "metrics", NetworkPolicy); no ServiceMonitor unless asked', () => {
    const objects = platformWith();
    const container = find(objects, 'Deployment', 'paddock-controller').spec.template.spec.containers[0];
    expect(container.args).toEqual(expect.arrayContaining(['--metrics-port', '9090']));
    expect(container.ports).toContainEqual({ name: 'metrics', containerPort: 9090, protocol: 'TCP' });
    expect(find(objects, 'Service', 'paddock-controller').spec.ports).toContainEqual({ name: 'metrics', port: 9090, targetPort: 'metrics', protocol: 'TCP' });
    expect(find(objects, 'NetworkPolicy', 'paddock-controller').spec.ingress).toContainEqual({ from: [{ namespaceSelector: {} }], ports: [{ protocol: 'TCP', port: 9090 }] });
    expect(objects.filter((o) => o.kind === 'ServiceMonitor')).toEqual([]);
  });

  test('metrics.serviceMonitor: a ServiceMonitor for the controller Service; scrapeFromNamespaces narrows the NetworkPolicy', () => {
    const objects = platformWith({ metrics: { serviceMonitor: true, serviceMonitorLabels: { release: 'prom' }, interval: '15s', port: 9400, scrapeFromNamespaces: ['monitoring'] } });
    const monitor = find(objects, 'ServiceMonitor', 'paddock-controller');
    expect(monitor.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(monitor.metadata.labels.release).toBe('prom');
    expect(monitor.spec).toEqual({
      selector: { matchLabels: find(objects, 'Service', 'paddock-controller').spec.selector },
      namespaceSelector: { matchNames: ['paddock'] },
      endpoints: [{ port: 'metrics', path: '/metrics', interval: '15s' }],
    });
    expect(find(objects, 'NetworkPolicy', 'paddock-controller').spec.ingress).toContainEqual({
      from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }],
      ports: [{ protocol: 'TCP', port: 9400 }],
    });
  });

  test('bad metrics props name the field and what to write', () => {
    expect(() => newPlatform({ metrics: { port: 8080 } })).toThrow(/Platform: metrics.port 8080 is taken by controller.port; give metrics their own port, e.g. metrics: \{ port: 9090 \}/);
    expect(() => newPlatform({ metrics: { port: 8081 } })).toThrow(/taken by controller.workerPort/);
    expect(() => newPlatform({ metrics: { port: 80 } })).toThrow(/metrics.port/);
    // Left out: the first of 9090-9092 that no controller port takes.
    const { chart } = newPlatform({ controller: { port: 9090, workerPort: 9091 } });
    expect(find(synth(chart), 'Service', 'paddock-controller').spec.ports).toContainEqual({ name: 'metrics', port: 9092, targetPort: 'metrics', protocol: 'TCP' });
    expect(() => newPlatform({ metrics: { interval: 'often' } })).toThrow(/metrics.interval "often" is not a duration; write e.g. "30s"/);
    expect(() => newPlatform({ metrics: { scrapeFromNamespaces: [] } })).toThrow(/metrics.scrapeFromNamespaces is empty; list the namespaces of your Prometheus, e.g. \["monitoring"\]/);
    expect(() => newPlatform({ metrics: { scrapeFromNamespaces: ['Bad_NS'] } })).toThrow(/metrics.scrapeFromNamespaces\[0\]/);
  });
});
