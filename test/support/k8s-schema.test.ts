import * as fs from 'fs';
import * as path from 'path';
import { expectValidK8s, registerSchema, validateK8sObject } from './k8s-schema';

/** A fresh object per call, so tests can break it freely. */
const deployment = (): any => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'codex-worker', namespace: 'paddock', labels: { 'app.kubernetes.io/name': 'codex-worker' } },
  spec: {
    replicas: 2,
    selector: { matchLabels: { 'app.kubernetes.io/name': 'codex-worker' } },
    strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: 0 } },
    template: {
      metadata: { labels: { 'app.kubernetes.io/name': 'codex-worker' } },
      spec: {
        serviceAccountName: 'codex-worker',
        runtimeClassName: 'gvisor',
        securityContext: { runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: 'RuntimeDefault' } },
        containers: [{
          name: 'runner',
          image: 'ghcr.io/example/paddock-runner:0.1.0',
          imagePullPolicy: 'IfNotPresent',
          args: ['--task', '/etc/paddock/task'],
          env: [{ name: 'OPENAI_API_KEY', valueFrom: { secretKeyRef: { name: 'model-credentials', key: 'openai' } } }],
          ports: [{ name: 'http', containerPort: 8080 }],
          resources: { requests: { cpu: '500m', memory: 1024 }, limits: { cpu: 2, memory: '2Gi' } },
          readinessProbe: { httpGet: { path: '/healthz', port: 'http' } },
          securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
          volumeMounts: [{ name: 'task', mountPath: '/etc/paddock/task', readOnly: true }],
        }],
        volumes: [{ name: 'task', configMap: { name: 'task-fix-readme' } }],
      },
    },
  },
});

const job = (): any => ({
  apiVersion: 'batch/v1',
  kind: 'Job',
  metadata: { name: 'task-fix-readme', namespace: 'paddock' },
  spec: {
    backoffLimit: 0,
    ttlSecondsAfterFinished: 3600,
    template: {
      metadata: { labels: { 'paddock.dev/task': 'fix-readme' } },
      spec: { restartPolicy: 'Never', containers: [{ name: 'runner', image: 'runner:1', command: ['paddock-runner'] }] },
    },
  },
});

const networkPolicy = (): any => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name: 'default-deny', namespace: 'paddock' },
  spec: {
    podSelector: {},
    policyTypes: ['Ingress', 'Egress'],
    egress: [{
      to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
      ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 'dns-tcp' }],
    }, {
      to: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['10.0.0.0/8', '169.254.169.254/32'] } }],
      ports: [{ protocol: 'TCP', port: 443 }],
    }],
  },
});

const runtimeClass = (): any => ({
  apiVersion: 'node.k8s.io/v1',
  kind: 'RuntimeClass',
  metadata: { name: 'gvisor' },
  handler: 'runsc',
  overhead: { podFixed: { cpu: '250m', memory: '64Mi' } },
  scheduling: { nodeSelector: { 'sandbox.paddock.dev/gvisor': 'true' } },
});

const pdb = (): any => ({
  apiVersion: 'policy/v1',
  kind: 'PodDisruptionBudget',
  metadata: { name: 'codex-worker', namespace: 'paddock' },
  spec: { minAvailable: 1, selector: { matchLabels: { 'app.kubernetes.io/name': 'codex-worker' } } },
});

const service = (targetPort: unknown): any => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'controller', namespace: 'paddock' },
  spec: { selector: { app: 'controller' }, ports: [{ name: 'http', port: 80, targetPort }] },
});

/** One of every kind the platform synthesizes. */
const platform = (): any[] => [
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'paddock', labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } } },
  { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'task-fix-readme', namespace: 'paddock' }, data: { 'task.json': '{}', '.hidden_ok-1': 'x' } },
  { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'model-credentials', namespace: 'paddock' }, type: 'Opaque', data: { openai: 'c2stdGVzdA==' }, stringData: { anthropic: 'plain text' } },
  { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'codex-worker', namespace: 'paddock' }, automountServiceAccountToken: false },
  service('http'),
  deployment(),
  job(),
  networkPolicy(),
  pdb(),
  runtimeClass(),
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'paddock:runner', namespace: 'paddock' }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list'] }] },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'paddock:runner', namespace: 'paddock' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'paddock:runner' }, subjects: [{ kind: 'ServiceAccount', name: 'codex-worker', namespace: 'paddock' }] },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'system:paddock-controller' }, rules: [{ apiGroups: ['batch'], resources: ['jobs'], verbs: ['*'] }] },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'system:paddock-controller' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:paddock-controller' }, subjects: [{ kind: 'ServiceAccount', name: 'controller', namespace: 'paddock' }] },
  { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'paddock-controller', namespace: 'paddock' }, spec: { holderIdentity: 'controller-0', leaseDurationSeconds: 15, renewTime: '2024-05-01T10:00:00.000000Z' } },
];

describe('valid objects pass', () => {
  test.each(platform().map((o) => [`${o.kind} ${o.metadata.name}`, o]))('%s', (_name, obj) => {
    expect(validateK8sObject(obj)).toEqual([]);
  });

  test('expectValidK8s accepts the whole platform', () => {
    expect(() => expectValidK8s(platform())).not.toThrow();
  });

  test('Quantity: strings with suffixes and bare numbers', () => {
    const d = deployment();
    d.spec.template.spec.containers[0].resources = { requests: { cpu: '500m', memory: 1024, 'ephemeral-storage': '1.5Gi' }, limits: { cpu: 0.5, memory: '1e9' } };
    expect(validateK8sObject(d)).toEqual([]);
  });

  test('IntOrString: a named or a numbered targetPort', () => {
    expect(validateK8sObject(service('http'))).toEqual([]);
    expect(validateK8sObject(service(8080))).toEqual([]);
  });

  test('null timestamps, as kubectl writes them', () => {
    const d = deployment();
    d.metadata.creationTimestamp = null;
    expect(validateK8sObject(d)).toEqual([]);
  });

  test('a Deployment selector may use matchExpressions', () => {
    const d = deployment();
    d.spec.selector = { matchExpressions: [{ key: 'app.kubernetes.io/name', operator: 'In', values: ['codex-worker'] }, { key: 'canary', operator: 'DoesNotExist' }] };
    expect(validateK8sObject(d)).toEqual([]);
  });
});

describe('unknown fields are rejected, naming the path', () => {
  test('a typo in a container field', () => {
    const d = deployment();
    d.spec.template.spec.containers[0].imagePullPolicyy = 'Always';
    expect(validateK8sObject(d)).toEqual(['spec.template.spec.containers[0].imagePullPolicyy: unknown field (did you mean "imagePullPolicy"?)']);
  });

  test('a typo in metadata', () => {
    const d = deployment();
    d.metadata.lables = { team: 'a' };
    expect(validateK8sObject(d)).toEqual(['metadata.lables: unknown field (did you mean "labels"?)']);
  });

  test('a typo in the pod template metadata, a Job and a NetworkPolicy peer', () => {
    const j = job();
    j.spec.template.metadata.annotation = {};
    j.spec.backofLimit = 1;
    expect(validateK8sObject(j)).toEqual([
      'spec.backofLimit: unknown field (did you mean "backoffLimit"?)',
      'spec.template.metadata.annotation: unknown field (did you mean "annotations"?)',
    ]);
    const n = networkPolicy();
    n.spec.egress[0].to[0].podselector = {};
    expect(validateK8sObject(n)).toEqual(['spec.egress[0].to[0].podselector: unknown field (did you mean "podSelector"?)']);
  });

  test('status is allowed; a field nothing resembles gets no suggestion', () => {
    const d = deployment();
    d.status = { replicas: 2, readyReplicas: 2, conditions: [{ type: 'Available', status: 'True', lastUpdateTime: '2024-05-01T10:00:00Z' }] };
    expect(validateK8sObject(d)).toEqual([]);
    const r = runtimeClass();
    r.sandbox = 'gvisor';
    expect(validateK8sObject(r)).toEqual(['sandbox: unknown field']);
  });
});

describe('wrong types and values are rejected', () => {
  test('replicas as a string', () => {
    const d = deployment();
    d.spec.replicas = '3';
    expect(validateK8sObject(d)).toEqual(['spec.replicas: must be integer, got string "3"']);
  });

  test('integer fields reject fractions (kubernetes-types says number; the API says int32)', () => {
    const d = deployment();
    d.spec.replicas = 1.5;
    expect(validateK8sObject(d)).toEqual(['spec.replicas: must be integer, got number 1.5']);
  });

  test('IntOrString rejects other types', () => {
    expect(validateK8sObject(service(true))).toEqual(['spec.ports[0].targetPort: must be integer or string, got boolean true']);
    const p = pdb();
    p.spec.minAvailable = 1.5;
    expect(validateK8sObject(p)).toEqual(['spec.minAvailable: must be integer or string, got number 1.5']);
  });

  test('a malformed Quantity', () => {
    const d = deployment();
    d.spec.template.spec.containers[0].resources.limits.memory = '2GB';
    expect(validateK8sObject(d)).toEqual(['spec.template.spec.containers[0].resources.limits.memory: invalid quantity "2GB" (e.g. "500m", "1.5", "128Mi", "1G")']);
  });

  test('a missing required field', () => {
    const d = deployment();
    delete d.spec.template.spec.containers[0].name;
    expect(validateK8sObject(d)).toContain('spec.template.spec.containers[0].name: missing required field');
  });

  test('enums the API server enforces', () => {
    const d = deployment();
    d.spec.template.spec.containers[0].imagePullPolicy = 'always';
    expect(validateK8sObject(d)).toEqual(['spec.template.spec.containers[0].imagePullPolicy: must be one of "Always", "IfNotPresent", "Never", got string "always"']);
  });

  test('Secret data must be base64', () => {
    const s = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, data: { token: 'not base64!' } };
    expect(validateK8sObject(s)).toEqual(['data.token: invalid base64 value "not base64!": Secret data must be standard padded base64 (use stringData for plain text)']);
  });
});

describe('kinds', () => {
  test('an unknown kind is an error, not a pass', () => {
    expect(validateK8sObject({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } })).toEqual([
      '(root): no schema for apiVersion "example.com/v1", kind "Widget"; add the kind to test/support/gen-k8s-schema.js or call registerSchema()',
    ]);
  });

  test('a known kind in the wrong apiVersion names the right one', () => {
    expect(validateK8sObject({ ...deployment(), apiVersion: 'extensions/v1beta1' })).toEqual([
      'apiVersion: no schema for Deployment in "extensions/v1beta1"; known: "apps/v1"',
    ]);
  });

  test('anything that is not an object with apiVersion and kind', () => {
    expect(validateK8sObject('kind: Deployment')).toEqual(['(root): must be a Kubernetes object, got string "kind: Deployment"']);
    expect(validateK8sObject({ kind: 'Deployment' })).toEqual(['(root): apiVersion and kind must both be strings, got apiVersion nothing, kind string "Deployment"']);
  });

  test('the schema covers every kind Paddock synthesizes', () => {
    const doc = JSON.parse(fs.readFileSync(path.join(__dirname, 'k8s-1.30.schema.json'), 'utf8'));
    const kinds = Object.values<any>(doc.definitions).flatMap((d) => d['x-kubernetes-group-version-kind'] ?? [])
      .map(({ group, version, kind }) => `${group ? `${group}/` : ''}${version} ${kind}`);
    expect(kinds).toEqual(expect.arrayContaining([
      'v1 Namespace', 'v1 ConfigMap', 'v1 Secret', 'v1 ServiceAccount', 'v1 Service', 'apps/v1 Deployment', 'batch/v1 Job',
      'rbac.authorization.k8s.io/v1 Role', 'rbac.authorization.k8s.io/v1 RoleBinding', 'rbac.authorization.k8s.io/v1 ClusterRole',
      'rbac.authorization.k8s.io/v1 ClusterRoleBinding', 'networking.k8s.io/v1 NetworkPolicy', 'policy/v1 PodDisruptionBudget',
      'node.k8s.io/v1 RuntimeClass', 'coordination.k8s.io/v1 Lease',
    ]));
  });
});

describe('format layer: names and labels', () => {
  test('a label value that is too long', () => {
    const d = deployment();
    d.metadata.labels.team = 'a'.repeat(64);
    expect(validateK8sObject(d)).toEqual([`metadata.labels.team: invalid label value "${'a'.repeat(64)}": must be no more than 63 characters`]);
  });

  test('a label value with invalid characters, in a pod template and a selector', () => {
    const d = deployment();
    d.spec.template.metadata.labels.owner = 'me@example.com';
    const n = networkPolicy();
    n.spec.egress[0].to[0].podSelector.matchLabels['k8s-app'] = '-dns';
    expect(validateK8sObject(d)).toEqual([
      `spec.template.metadata.labels.owner: invalid label value "me@example.com": must be empty or consist of alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric`,
    ]);
    expect(validateK8sObject(n)).toHaveLength(1);
    expect(validateK8sObject(n)[0]).toMatch(/^spec\.egress\[0\]\.to\[0\]\.podSelector\.matchLabels\["k8s-app"\]: invalid label value "-dns"/);
  });

  test('label keys: optional DNS prefix, then a name of at most 63 characters', () => {
    const d = deployment();
    Object.assign(d.metadata.labels, { 'Example.com/x': 'a', 'a/b/c': 'a', [`x/${'n'.repeat(64)}`]: 'a', 'paddock.dev/pool': 'ok', Simple_Name: 'ok', '': 'a' });
    const errors = validateK8sObject(d);
    expect(errors).toHaveLength(4);
    expect(errors[0]).toMatch(/^metadata\.labels: invalid label key "Example\.com\/x": prefix part must be a lowercase RFC 1123 subdomain/);
    expect(errors[1]).toMatch(/invalid label key "a\/b\/c": a qualified name has at most one '\/'/);
    expect(errors[2]).toMatch(/name part must be no more than 63 characters/);
    expect(errors[3]).toMatch(/invalid label key "": name part must be non-empty/);
  });

  test('metadata.name follows the kind: subdomain, label, RFC 1035 label, RBAC path segment', () => {
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'paddock.task-1' } };
    expect(validateK8sObject(cm)).toEqual([]);
    expect(validateK8sObject({ ...cm, metadata: { name: 'Task_1' } })[0]).toMatch(/^metadata\.name: invalid name "Task_1": must be a lowercase RFC 1123 subdomain/);
    expect(validateK8sObject({ ...cm, metadata: { name: 'x'.repeat(254) } })[0]).toMatch(/must be no more than 253 characters/);
    expect(validateK8sObject({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'paddock.dev' } })[0]).toMatch(/must be a lowercase RFC 1123 label/);
    expect(validateK8sObject({ ...service(80), metadata: { name: '1-controller' } })[0]).toMatch(/must be an RFC 1035 label/);
    expect(validateK8sObject({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'a/b' } })).toEqual([`metadata.name: invalid name "a/b": may not contain '/' or '%'`]);
    expect(validateK8sObject({ apiVersion: 'v1', kind: 'ConfigMap', metadata: {} })).toEqual(['metadata.name: missing required field']);
  });

  test('cluster-scoped kinds take no namespace', () => {
    expect(validateK8sObject({ ...runtimeClass(), metadata: { name: 'gvisor', namespace: 'paddock' } })).toEqual([
      'metadata.namespace: not allowed: RuntimeClass is cluster-scoped',
    ]);
  });

  test("a Deployment's selector must match its template labels", () => {
    const d = deployment();
    d.spec.template.metadata.labels = { 'app.kubernetes.io/name': 'other' };
    expect(validateK8sObject(d)).toEqual(['spec.template.metadata.labels: `selector` does not match template `labels` ({"app.kubernetes.io/name":"other"})']);
    d.spec.selector = {};
    expect(validateK8sObject(d)).toEqual(['spec.selector: empty selector is invalid for deployment']);
  });

  test('container and port names', () => {
    const d = deployment();
    d.spec.template.spec.containers[0].name = 'Runner';
    d.spec.template.spec.containers[0].ports[0].name = 'metrics-endpoint';
    expect(validateK8sObject(d)).toEqual([
      'spec.template.spec.containers[0].name: invalid name "Runner": must be a lowercase RFC 1123 label: lowercase alphanumerics or \'-\', starting and ending with an alphanumeric (e.g. \'my-name\')',
      'spec.template.spec.containers[0].ports[0].name: invalid port name "metrics-endpoint": must be no more than 15 characters',
    ]);
  });
});

describe('registerSchema', () => {
  // The shape of a CRD's openAPIV3Schema (trimmed CiliumNetworkPolicy).
  const cnp = {
    type: 'object',
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { type: 'object' },
      spec: {
        type: 'object',
        properties: {
          endpointSelector: { type: 'object', properties: { matchLabels: { type: 'object', additionalProperties: { type: 'string' } } } },
          egress: { type: 'array', items: { type: 'object', properties: { toFQDNs: { type: 'array', items: { type: 'object', properties: { matchName: { type: 'string' }, matchPattern: { type: 'string' } } } } } } },
        },
      },
      status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
    },
  };
  const policy = (): any => ({
    apiVersion: 'cilium.io/v2',
    kind: 'CiliumNetworkPolicy',
    metadata: { name: 'codex-egress', namespace: 'paddock' },
    spec: { endpointSelector: { matchLabels: { 'app.kubernetes.io/name': 'codex-worker' } }, egress: [{ toFQDNs: [{ matchName: 'api.openai.com' }] }] },
  });

  test('is unknown until registered, then validated strictly, metadata included', () => {
    expect(validateK8sObject(policy())[0]).toMatch(/no schema for apiVersion "cilium\.io\/v2"/);
    registerSchema('cilium.io/v2', 'CiliumNetworkPolicy', cnp);
    expect(validateK8sObject(policy())).toEqual([]);
    expect(validateK8sObject({ ...policy(), status: { anything: 1 } })).toEqual([]);
    const bad = policy();
    bad.spec.egress[0].toFQDNs[0].matchNam = 'x';
    bad.metadata.lables = {};
    expect(validateK8sObject(bad)).toEqual([
      'spec.egress[0].toFQDNs[0].matchNam: unknown field (did you mean "matchName"?)',
      'metadata.lables: unknown field (did you mean "labels"?)',
    ]);
  });

  test('strict: false keeps the schema as written', () => {
    registerSchema('example.com/v1', 'Open', { type: 'object', properties: { spec: { type: 'object', properties: {} } } }, { strict: false });
    expect(validateK8sObject({ apiVersion: 'example.com/v1', kind: 'Open', metadata: { name: 'o' }, spec: { extra: 1 } })).toEqual([]);
  });
});

describe('expectValidK8s', () => {
  test('throws once, listing every invalid object by kind and name with its errors', () => {
    const d = deployment();
    d.spec.replicas = '3';
    const j = job();
    j.spec.template.spec.containers[0].imagePullPolicyy = 'Always';
    expect(() => expectValidK8s([networkPolicy(), d, j])).toThrow(
      '2 of 3 Kubernetes objects are invalid:\n' +
      '  Deployment paddock/codex-worker (apps/v1, item 1):\n' +
      '    - spec.replicas: must be integer, got string "3"\n' +
      '  Job paddock/task-fix-readme (batch/v1, item 2):\n' +
      '    - spec.template.spec.containers[0].imagePullPolicyy: unknown field (did you mean "imagePullPolicy"?)',
    );
  });
});

// Its speed is a benchmark's business (a timed assertion here failed under load); this checks
// that one compiled validator serves many objects.
test('1000 Deployments validate with one compiled validator', () => {
  const objects = Array.from({ length: 1000 }, deployment);
  expect(objects.map((o) => validateK8sObject(o)).filter((problems) => problems.length > 0)).toEqual([]);
});
