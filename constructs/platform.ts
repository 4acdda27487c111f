import { ApiObject, Chart, Lazy } from 'cdk8s';
import * as kplus from 'cdk8s-plus-30';
import { Construct, IConstruct } from 'constructs';
import type { NetworkPolicyEgressRule, NetworkPolicyIngressRule } from 'kubernetes-types/networking/v1';
import type { Volume, VolumeMount } from 'kubernetes-types/core/v1';
import { checkPlatformObjects, KubeObject, POD_SECURITY_VERSION } from '../policy/rules';
import type { Harness } from '../core/harness';
import { imageRef, ImageOptions } from '../core/images';
import { kubeObject } from './kube-object';
import { ModelGateway } from './model-gateway';
import { LABEL_AGENT, LABEL_POOL, selectorLabels, standardLabels } from '../core/labels';
import { hardenedContainerSecurityContext, hardenedPodSecurityContext, scratchVolumes } from './pod-hardening';
import { checkPodResources, PodResources, SandboxProfile } from './sandbox-profile';
import { checkDnsLabel, checkImageRef, checkInteger, checkLabels, fail, RESERVED_NAMESPACES, suggestDnsLabel } from '../core/validation';
import { stableJson } from '../core/stable-json';
import { PADDOCK_API_GROUP, PORT_FORWARD_ROLE } from '../core/labels';
import type { Publisher, PublishEgressBackend } from './publisher';

export interface ControllerOptions {
  /** More than one replica elects a leader through a coordination.k8s.io Lease. @default 1 */
  readonly replicas?: number;
  /** @default - Paddock's controller image (the runner image plus the Kubernetes client; `paddock controller`) */
  readonly image?: string;
  /** @default - requests 100m CPU / 128Mi memory, limits 500m CPU / 256Mi memory */
  readonly resources?: PodResources;
  /**
   * Port of the controller's task API (submit tasks, read their status and results;
   * the Service's port 80 "http"). Agent pods are not admitted to it. @default 8080
   */
  readonly port?: number;
  /**
   * Port of the controller's worker lease API (the Service's port "workers", same
   * number), which only warm pools' worker pods may reach. It leases a worker only
   * runs of its own warm pool. @default 8081
   */
  readonly workerPort?: number;
}

export interface MetricsOptions {
  /** Port of the controller's Prometheus /metrics (container and Service port "metrics"). @default 9090 (the first of 9090-9092 no controller port takes) */
  readonly port?: number;
  /**
   * A prometheus-operator ServiceMonitor (monitoring.coreos.com/v1) for the controller's
   * Service; needs the operator's CRDs in the cluster. @default false
   */
  readonly serviceMonitor?: boolean;
  /** Labels on the ServiceMonitor (e.g. the `release` your Prometheus selects). @default - none */
  readonly serviceMonitorLabels?: Record<string, string>;
  /** @default "30s" */
  readonly interval?: string;
  /**
   * Which namespaces' pods may scrape the metrics port (their `kubernetes.io/metadata.name`).
   * @default - pods of every namespace (the port serves metrics only)
   */
  readonly scrapeFromNamespaces?: string[];
}

export interface ClusterDnsOptions {
  /** Namespace of the cluster DNS pods. @default "kube-system" */
  readonly namespace?: string;
  /** Labels of the cluster DNS pods. @default { "k8s-app": "kube-dns" } (CoreDNS and kube-dns) */
  readonly podLabels?: Record<string, string>;
}

export interface ApiServerOptions {
  /** Where the controller may reach the Kubernetes API. Narrow it to your API server's address. @default ["0.0.0.0/0"] */
  readonly cidrs?: string[];
  /** @default [443, 6443] */
  readonly ports?: number[];
}

export interface PlatformProps {
  /** Namespace everything lives in. @default "paddock" */
  readonly namespace?: string;
  /** Create the namespace (labelled for Pod Security "restricted"). Set false when it exists already. @default true */
  readonly createNamespace?: boolean;
  /** Registry and tag of Paddock's own images. @default - worker-images/images.json */
  readonly imageOptions?: ImageOptions;
  /** @default - one replica of Paddock's controller */
  readonly controller?: ControllerOptions;
  /** @default - CoreDNS/kube-dns in kube-system */
  readonly clusterDns?: ClusterDnsOptions;
  /** @default - the controller may reach any address on 443 and 6443 */
  readonly apiServer?: ApiServerOptions;
  /** @default - /metrics on port 9090, no ServiceMonitor */
  readonly metrics?: MetricsOptions;
  /**
   * How the publish Jobs' allowlist (the push credentials' git hosts and forge APIs only) is enforced:
   * "proxy", an egress proxy that checks names, or "cilium" (CiliumNetworkPolicy toFQDNs; needs Cilium as the CNI).
   * @default "proxy"
   */
  readonly publishEgress?: PublishEgressBackend;
}

/** ClusterRoles for people and tools, bound per namespace with a RoleBinding (resourceNames: pools). */
export const TASK_SUBMITTER_ROLE = 'paddock-task-submitter';
export const TASK_VIEWER_ROLE = 'paddock-task-viewer';
/** What `paddock tasks` needs to reach the controller through a kubeconfig (list pods, port-forward). */
export { PORT_FORWARD_ROLE };

const CONTROLLER = 'paddock-controller';
/** RuntimeClasses synthesized so far, per chart (cluster-scoped objects: one copy). */
const RUNTIME_CLASSES = new WeakMap<Chart, Map<string, SandboxProfile>>();
const CONTROLLER_UID = 10001;

/**
 * The platform: namespace, controller (Deployment, ServiceAccount, RBAC,
 * Service, PDB) and the namespace-wide default-deny NetworkPolicy. Pools,
 * tasks, allowlists and credentials attach to a Platform; it runs Paddock's
 * security policy over everything under it at synth time.
 */
export class Platform extends Construct {
  /** The Platform a construct belongs to. */
  public static of(scope: IConstruct): Platform {
    const found = scope.node.scopes.slice().reverse().find((s): s is Platform => s instanceof Platform);
    if (!found) {
      fail(`${scope.node.path}: must be created inside a Platform, e.g. new AgentPool(platform, "codex", {...})`);
    }
    return found;
  }

  public readonly namespace: string;
  public readonly imageOptions: ImageOptions;
  /** Port of the controller's task API. */
  public readonly controllerPort: number;
  /** Port of the controller's worker lease API (container and Service port). */
  public readonly controllerWorkerPort: number;
  /** Port of the controller's Prometheus metrics (container and Service port "metrics"). */
  public readonly controllerMetricsPort: number;
  /** The controller Deployment (escape hatch: ApiObject.addJsonPatch). */
  public readonly controller: ApiObject;
  public readonly controllerServiceName = CONTROLLER;
  private readonly publishEgress?: PublishEgressBackend;
  /** cdk8s-plus: the controller's pods, a pod selector and network-policy peer (e.g. `deployment.connections.allowTo(platform.controllerPods)`). */
  public readonly controllerPods: kplus.Pods;
  /** cdk8s-plus: the cluster DNS pods the platform's pods may query (see `dnsNetworkPolicyRule`). */
  public readonly clusterDnsPods: kplus.Pods;
  private readonly clusterDns: Required<ClusterDnsOptions>;
  private readonly harnesses = new Map<string, Harness>();
  private readonly poolsByName = new Map<string, IPoolRef>();
  private readonly secretValues: string[] = [];
  private gateway?: ModelGateway;
  private readonly apiServerEgress: NetworkPolicyEgressRule;
  private readonly literalSecrets = new Set<ApiObject>();
  private readonly claimedNames = new Map<string, string>();

  constructor(scope: Construct, id: string, props: PlatformProps = {}) {
    super(scope, id);
    this.namespace = checkDnsLabel(props.namespace ?? 'paddock', 'Platform: namespace');
    if (props.publishEgress !== undefined && props.publishEgress !== 'proxy' && props.publishEgress !== 'cilium') {
      fail(`Platform: publishEgress "${String(props.publishEgress)}" is unknown; use "proxy" (an egress proxy that checks names) or "cilium" (CiliumNetworkPolicy toFQDNs)`);
    }
    this.publishEgress = props.publishEgress;
    if (RESERVED_NAMESPACES.includes(this.namespace)) {
      fail(
        `Platform: namespace "${this.namespace}" is shared with ${this.namespace === 'default' ? 'other workloads' : "the cluster's own components"}; ` +
          'the platform denies all traffic of every pod in its namespace and enforces Pod Security "restricted" there. Give it a namespace of its own, e.g. namespace: "paddock"',
      );
    }
    this.imageOptions = props.imageOptions ?? {};
    this.clusterDns = {
      namespace: checkDnsLabel(props.clusterDns?.namespace ?? 'kube-system', 'Platform: clusterDns.namespace'),
      podLabels: checkLabels(props.clusterDns?.podLabels ?? { 'k8s-app': 'kube-dns' }, 'Platform: clusterDns.podLabels'),
    };
    if (Object.keys(this.clusterDns.podLabels).length === 0) {
      fail('Platform: clusterDns.podLabels must select the DNS pods, e.g. { "k8s-app": "kube-dns" }; an empty selector would allow port 53 to every pod of the namespace');
    }
    const controller = props.controller ?? {};
    const replicas = checkInteger(controller.replicas ?? 1, 'Platform: controller.replicas', 1, 10);
    this.controllerPort = checkInteger(controller.port ?? 8080, 'Platform: controller.port', 1024, 65535);
    this.controllerWorkerPort = checkInteger(controller.workerPort ?? 8081, 'Platform: controller.workerPort', 1024, 65535);
    if (this.controllerWorkerPort === this.controllerPort) {
      fail(`Platform: controller.workerPort ${this.controllerWorkerPort} is controller.port too; the worker lease API needs its own port (agent pods must not reach the task API), e.g. workerPort: ${this.controllerPort === 8081 ? 8082 : 8081}`);
    }
    const taken = (p: number) => p === this.controllerPort || p === this.controllerWorkerPort;
    const freeMetricsPort = [9090, 9091, 9092].find((p) => !taken(p))!;
    this.controllerMetricsPort = checkInteger(props.metrics?.port ?? freeMetricsPort, 'Platform: metrics.port', 1024, 65535);
    if (taken(this.controllerMetricsPort)) {
      fail(`Platform: metrics.port ${this.controllerMetricsPort} is taken by ${this.controllerMetricsPort === this.controllerPort ? 'controller.port' : 'controller.workerPort'}; give metrics their own port, e.g. metrics: { port: ${freeMetricsPort} }`);
    }
    const scrapeFrom = (props.metrics?.scrapeFromNamespaces ?? []).map((n, i) => checkDnsLabel(n, `Platform: metrics.scrapeFromNamespaces[${i}]`));
    if (props.metrics?.scrapeFromNamespaces && scrapeFrom.length === 0) fail('Platform: metrics.scrapeFromNamespaces is empty; list the namespaces of your Prometheus, e.g. ["monitoring"], or leave it out');
    const interval = props.metrics?.interval ?? '30s';
    if (!/^\d+(ms|s|m|h)$/.test(interval)) fail(`Platform: metrics.interval "${interval}" is not a duration; write e.g. "30s" or "1m"`);
    const resources = checkPodResources(
      controller.resources ?? { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '500m', memory: '256Mi' } },
      'Platform: controller.resources',
    );
    const apiCidrs = props.apiServer?.cidrs ?? ['0.0.0.0/0'];
    const apiPorts = (props.apiServer?.ports ?? [443, 6443]).map((p, i) => checkInteger(p, `Platform: apiServer.ports[${i}]`, 1, 65535));
    if (apiCidrs.length === 0) fail('Platform: apiServer.cidrs must list at least one CIDR, e.g. ["10.0.0.1/32"]');
    this.apiServerEgress = { to: apiCidrs.map((cidr) => ({ ipBlock: { cidr } })), ports: apiPorts.map((port) => ({ protocol: 'TCP', port })) };

    const ns = this.namespace;
    this.controllerPods = kplus.Pods.select(this, 'controller-pods', {
      labels: selectorLabels(ns, 'controller'),
      namespaces: kplus.Namespaces.select(this, 'controller-namespace', { names: [ns] }),
    });
    this.clusterDnsPods = kplus.Pods.select(this, 'cluster-dns-pods', {
      labels: this.clusterDns.podLabels,
      namespaces: kplus.Namespaces.select(this, 'cluster-dns-namespace', { names: [this.clusterDns.namespace] }),
    });
    if (props.createNamespace ?? true) {
      kubeObject(this, 'namespace', {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: {
          name: ns,
          labels: {
            ...standardLabels(ns, 'platform'),
            'kubernetes.io/metadata.name': ns,
            'pod-security.kubernetes.io/enforce': 'restricted',
            'pod-security.kubernetes.io/enforce-version': POD_SECURITY_VERSION,
            'pod-security.kubernetes.io/warn': 'restricted',
            'pod-security.kubernetes.io/audit': 'restricted',
          },
        },
      });
    }

    // The floor: nothing in the namespace talks to anything unless a later policy allows it.
    kubeObject(this, 'default-deny', {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'paddock-default-deny', namespace: ns, labels: standardLabels(ns, 'platform') },
      spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] },
    });

    const labels = standardLabels(ns, 'controller');
    const selector = selectorLabels(ns, 'controller');
    kubeObject(this, 'controller-sa', {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: CONTROLLER, namespace: ns, labels },
      automountServiceAccountToken: false,
    });
    // Least privilege: exactly what dispatching tasks to Jobs and storing results needs.
    const rules = [
      { apiGroups: ['batch'], resources: ['jobs'], verbs: ['get', 'list', 'watch', 'create', 'delete'] },
      { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
      // Lifecycle Events (events.k8s.io/v1) on task ConfigMaps.
      { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create'] },
      // A Job runner's patches travel in the tail of its log (no credentials in agent pods).
      { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] },
      ...(replicas > 1 ? [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] }] : []),
    ];
    kubeObject(this, 'controller-role', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: CONTROLLER, namespace: ns, labels },
      rules,
    });
    kubeObject(this, 'controller-rolebinding', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: CONTROLLER, namespace: ns, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: CONTROLLER },
      subjects: [{ kind: 'ServiceAccount', name: CONTROLLER, namespace: ns }],
    });
    // TokenReview and SubjectAccessReview: the APIs check callers with the API server.
    kubeObject(this, 'controller-auth-delegator', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: `${CONTROLLER}-${ns}-auth-delegator`, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' },
      subjects: [{ kind: 'ServiceAccount', name: CONTROLLER, namespace: ns }],
    });
    // For people and tools; bind in this namespace, e.g. kubectl -n NS create rolebinding alice-codex
    // --clusterrole paddock-task-submitter --user alice (a Role of your own with resourceNames: [POOL]
    // limits it to pools).
    const taskRole = (id: string, name: string, verbs: string[], what: string) =>
      kubeObject(this, id, {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: { name, labels: standardLabels(ns, 'platform'), annotations: { 'paddock.dev/description': what } },
        rules: [{ apiGroups: [PADDOCK_API_GROUP], resources: ['tasks', 'tasks/results', 'tasks/sessions'], verbs }],
      });
    taskRole('task-submitter-role', TASK_SUBMITTER_ROLE, ['create', 'get', 'list', 'delete'], "submit, read and cancel tasks through the controller's task API");
    taskRole('task-viewer-role', TASK_VIEWER_ROLE, ['get', 'list'], "read tasks and their results through the controller's task API");
    // `paddock tasks` without --server finds a ready controller pod and port-forwards to it as the
    // kubeconfig's user. RBAC cannot name a Deployment's pods, so port-forward covers every pod of
    // the namespace: bind it for people on their own machines, not for workloads in the cluster.
    kubeObject(this, 'port-forward-role', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: {
        name: PORT_FORWARD_ROLE,
        labels: standardLabels(ns, 'platform'),
        annotations: { 'paddock.dev/description': 'reach the controller through the kubeconfig, as paddock tasks does: list pods, port-forward (to any pod of the namespace it is bound in)' },
      },
      rules: [
        { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
        // The WebSocket upgrade is a GET; the API server also checks create.
        { apiGroups: [''], resources: ['pods/portforward'], verbs: ['get', 'create'] },
      ],
    });
    const scratch = scratchVolumes([{ name: 'tmp', mountPath: '/tmp', sizeLimit: '64Mi' }]);
    this.controller = kubeObject(this, 'controller', {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: CONTROLLER, namespace: ns, labels },
      spec: {
        replicas,
        selector: { matchLabels: selector },
        template: {
          // A warm pool's egress labels: the controller fetches that pool's sources through its egress.
          metadata: { labels: Lazy.any({ produce: () => ({ ...labels, ...this.controllerFetch().podLabels }) }) },
          spec: {
            serviceAccountName: CONTROLLER,
            // The controller talks to the API server; the token is projected only into its pod.
            automountServiceAccountToken: true,
            enableServiceLinks: false,
            securityContext: hardenedPodSecurityContext(CONTROLLER_UID),
            containers: [
              {
                name: 'controller',
                image: checkImageRef(controller.image ?? imageRef('controller', this.imageOptions), 'Platform: controller.image'),
                // More than one replica: leader election through the coordination.k8s.io Lease "paddock-controller".
                args: [
                  'controller',
                  '--namespace',
                  ns,
                  '--port',
                  String(this.controllerPort),
                  '--worker-port',
                  String(this.controllerWorkerPort),
                  '--metrics-port',
                  String(this.controllerMetricsPort),
                  ...(replicas > 1 ? ['--leader-elect'] : []),
                ],
                env: [
                  { name: 'PADDOCK_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                  { name: 'PADDOCK_POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                  // Followers forward API requests to the leader at the address it records on the Lease.
                  ...(replicas > 1 ? [{ name: 'PADDOCK_POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }] : []),
                ],
                ports: [
                  { name: 'http', containerPort: this.controllerPort, protocol: 'TCP' },
                  { name: 'workers', containerPort: this.controllerWorkerPort, protocol: 'TCP' },
                  { name: 'metrics', containerPort: this.controllerMetricsPort, protocol: 'TCP' },
                ],
                readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 10 },
                livenessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 20, failureThreshold: 3 },
                resources,
                securityContext: hardenedContainerSecurityContext(CONTROLLER_UID),
                // Warm pools' git Secrets: the controller fetches their sources, so no worker pod holds a git token.
                volumeMounts: Lazy.any({ produce: () => [...scratch.mounts, ...this.controllerFetch().secrets.map((v) => v.mount)] }),
              },
            ],
            volumes: Lazy.any({ produce: () => [...scratch.volumes, ...this.controllerFetch().secrets.map((v) => v.volume)] }),
          },
        },
      },
    });
    kubeObject(this, 'controller-service', {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: CONTROLLER, namespace: ns, labels },
      spec: {
        selector,
        ports: [
          { name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' },
          { name: 'workers', port: this.controllerWorkerPort, targetPort: 'workers', protocol: 'TCP' },
          { name: 'metrics', port: this.controllerMetricsPort, targetPort: 'metrics', protocol: 'TCP' },
        ],
      },
    });
    if (props.metrics?.serviceMonitor) {
      kubeObject(this, 'controller-service-monitor', {
        apiVersion: 'monitoring.coreos.com/v1',
        kind: 'ServiceMonitor',
        metadata: { name: CONTROLLER, namespace: ns, labels: { ...labels, ...props.metrics.serviceMonitorLabels } },
        spec: { selector: { matchLabels: selector }, namespaceSelector: { matchNames: [ns] }, endpoints: [{ port: 'metrics', path: '/metrics', interval }] },
      });
    }
    kubeObject(this, 'controller-pdb', {
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: { name: CONTROLLER, namespace: ns, labels },
      spec: replicas > 1 ? { minAvailable: 1, selector: { matchLabels: selector } } : { maxUnavailable: 1, selector: { matchLabels: selector } },
    });
    const metricsIngress: NetworkPolicyIngressRule = {
      from: scrapeFrom.length ? scrapeFrom.map((n) => ({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': n } } })) : [{ namespaceSelector: {} }],
      ports: [{ protocol: 'TCP', port: this.controllerMetricsPort }],
    };
    kubeObject(this, 'controller-network-policy', {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: CONTROLLER, namespace: ns, labels },
      spec: {
        podSelector: { matchLabels: selector },
        policyTypes: ['Ingress', 'Egress'],
        // The task API: pods of this namespace that run no agent code (kubectl port-forward
        // goes through the kubelet). Agent pods (warm workers, task Jobs) are not admitted:
        // an agent could otherwise submit tasks to other pools, with other credentials.
        // The worker lease API: the warm pools' worker pods only (none when no pool is warm).
        ingress: Lazy.any({ produce: () => [...this.controllerIngress(replicas), metricsIngress] }),
        egress: [
          this.dnsEgressRule(),
          this.apiServerEgress,
          // Followers forward API requests to the leader.
          ...(replicas > 1 ? [{ to: [{ podSelector: { matchLabels: selector } }], ports: [this.controllerPort, this.controllerWorkerPort].map((port) => ({ protocol: 'TCP', port })) }] : []),
        ],
      },
    });

    this.node.addValidation({ validate: () => this.checkPolicy() });
  }

  private controllerIngress(replicas: number): NetworkPolicyIngressRule[] {
    const taskApi: NetworkPolicyIngressRule = {
      from: [{ podSelector: { matchExpressions: [{ key: LABEL_AGENT, operator: 'DoesNotExist' }] } }],
      ports: [{ protocol: 'TCP', port: this.controllerPort }],
    };
    const warmPools = [...this.poolsByName.values()].filter((p) => p.mode === 'warm').map((p) => p.name).sort();
    // Followers forward the workers' requests to the leader.
    const replicasPeer = replicas > 1 ? [{ podSelector: { matchLabels: selectorLabels(this.namespace, 'controller') } }] : [];
    const workerPeers = [
      ...(warmPools.length ? [{ podSelector: { matchLabels: selectorLabels(this.namespace, 'worker'), matchExpressions: [{ key: LABEL_POOL, operator: 'In', values: warmPools } ] } }] : []),
      ...replicasPeer,
    ];
    if (workerPeers.length === 0) return [taskApi];
    return [taskApi, { from: workerPeers, ports: [{ protocol: 'TCP', port: this.controllerWorkerPort }] }];
  }

  /** What fetching the warm pools' sources needs: their git Secret volumes (deduplicated) and egress labels. */
  private controllerFetch(): { secrets: Array<{ volume: Volume; mount: VolumeMount }>; podLabels: Record<string, string> } {
    const byName = new Map<string, { volume: Volume; mount: VolumeMount }>();
    const podLabels: Record<string, string> = {};
    for (const pool of this.poolsByName.values()) {
      const need = pool._controllerFetch;
      if (!need) continue;
      for (const v of need.secrets) {
        const known = byName.get(v.volume.name);
        const items = [...(known?.volume.secret?.items ?? []), ...(v.volume.secret?.items ?? [])].filter((it, i, all) => all.findIndex((o) => o.key === it.key) === i);
        byName.set(v.volume.name, { mount: v.mount, volume: { ...v.volume, secret: { ...v.volume.secret, items: items.sort((a, b) => a.key.localeCompare(b.key)) } } });
      }
      if (need.secrets.length > 0) Object.assign(podLabels, need.podLabels);
    }
    return { secrets: [...byName.values()].sort((a, b) => a.volume.name.localeCompare(b.volume.name)), podLabels };
  }

  /** Egress to the cluster DNS pods only (UDP and TCP 53). */
  public dnsEgressRule(): NetworkPolicyEgressRule {
    return {
      to: [
        {
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': this.clusterDns.namespace } },
          podSelector: { matchLabels: this.clusterDns.podLabels },
        },
      ],
      ports: [
        { protocol: 'UDP', port: 53 },
        { protocol: 'TCP', port: 53 },
      ],
    };
  }

  /** The model gateway, created with the first model key granted to a pool. */
  public get modelGateway(): ModelGateway {
    this.gateway ??= new ModelGateway(this, 'model-gateway', { apiServer: this.apiServerEgress });
    return this.gateway;
  }

  /**
   * The same DNS rule as `dnsEgressRule`, for cdk8s-plus:
   * `new kplus.NetworkPolicy(chart, "np", { selector: app, egress: { rules: [platform.dnsNetworkPolicyRule()] } })`.
   */
  public dnsNetworkPolicyRule(): kplus.NetworkPolicyRule {
    return { peer: this.clusterDnsPods, ports: [kplus.NetworkPolicyPort.udp(53), kplus.NetworkPolicyPort.tcp(53)] };
  }

  /** URL of the controller's task API inside the cluster (agent pods cannot reach it). */
  public get controllerUrl(): string {
    return `http://${CONTROLLER}.${this.namespace}.svc`;
  }

  /** URL of the controller's worker lease API inside the cluster (warm workers' `--controller`). */
  public get controllerWorkerUrl(): string {
    return `http://${CONTROLLER}.${this.namespace}.svc:${this.controllerWorkerPort}`;
  }

  /** ConfigMap name of a harness's spec. */
  public harnessConfigMapName(harness: Harness): string {
    return `harness-${harness.name}`;
  }

  /** Synthesize a harness's ConfigMap once, however many pools run it. */
  public useHarness(harness: Harness): void {
    const known = this.harnesses.get(harness.name);
    if (known) {
      if (known !== harness && JSON.stringify(known.spec) !== JSON.stringify(harness.spec)) {
        fail(`Harness "${harness.name}": two different harnesses share this name in platform "${this.namespace}"; give one another name, e.g. Harness.codex({ name: "codex-fast" })`);
      }
      return;
    }
    this.harnesses.set(harness.name, harness);
    kubeObject(this, `harness-${harness.name}`, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: this.harnessConfigMapName(harness),
        namespace: this.namespace,
        labels: standardLabels(this.namespace, 'harness', { 'paddock.dev/harness': harness.name }),
      },
      data: { 'harness.json': stableJson(harness.spec) },
    });
  }

  /** Synthesize a sandbox profile's RuntimeClass once (unless the cluster admin owns it). */
  public useSandbox(profile: SandboxProfile): void {
    const name = profile.runtimeClassName;
    if (!name) return;
    // Cluster-scoped: one RuntimeClass per chart, however many Platforms in it use the profile.
    const chart = Chart.of(this);
    const runtimeClasses = RUNTIME_CLASSES.get(chart) ?? new Map<string, SandboxProfile>();
    RUNTIME_CLASSES.set(chart, runtimeClasses);
    const known = runtimeClasses.get(name);
    if (known) {
      if (known.handler !== profile.handler || known.createRuntimeClass !== profile.createRuntimeClass) {
        fail(`SandboxProfile: two profiles use RuntimeClass "${name}" with different settings; give one another runtimeClassName`);
      }
      return;
    }
    runtimeClasses.set(name, profile);
    if (!profile.createRuntimeClass) return;
    kubeObject(this, `runtimeclass-${name}`, {
      apiVersion: 'node.k8s.io/v1',
      kind: 'RuntimeClass',
      metadata: { name, labels: standardLabels(this.namespace, 'sandbox') },
      handler: profile.handler as string,
      ...(profile.overhead ? { overhead: { podFixed: { ...profile.overhead } } } : {}),
      ...(profile.nodeSelector || profile.tolerations
        ? { scheduling: { ...(profile.nodeSelector ? { nodeSelector: profile.nodeSelector } : {}), ...(profile.tolerations ? { tolerations: profile.tolerations } : {}) } }
        : {}),
    });
  }

  /** @internal called by AgentPool */
  public _registerPool(pool: IPoolRef): void {
    const twin = this.poolsByName.get(pool.name);
    if (twin) {
      fail(
        `AgentPool "${pool.node.id}": name "${pool.name}" is taken by AgentPool "${twin.node.id}" (${twin.node.path}) in platform "${this.namespace}"; ` +
          `pool names must be unique: give one another name, e.g. new AgentPool(scope, "${pool.node.id}", { name: "${suggestDnsLabel(`${pool.name}-2`, 50)}", ... })`,
      );
    }
    this.poolsByName.set(pool.name, pool);
  }

  /** @internal the pool of that name, for tasks that name their pool */
  public _findPool(name: string): IPoolRef | undefined {
    return this.poolsByName.get(name);
  }

  public get poolNames(): string[] {
    return [...this.poolsByName.keys()];
  }

  private publisher?: Publisher;

  /** @internal The publish step (SA, Job template, egress allowlist), made on the first push grant. */
  public _usePublisher(): Publisher {
    // Loaded here: publisher.ts imports this module's type only.
    const { Publisher: make } = require('./publisher') as typeof import('./publisher');
    this.publisher ??= new make(this, 'publisher', { backend: this.publishEgress });
    return this.publisher;
  }

  /** @internal literal credential values, which the policy keeps out of every ConfigMap */
  public _registerSecretValues(values: string[]): void {
    this.secretValues.push(...values);
  }

  /**
   * @internal Claim an object name in the namespace: two constructs whose objects would
   * share a kind and name (e.g. allowlists "x" and "proxy-x": both write NetworkPolicy
   * "egress-proxy-x") fail at construction.
   */
  public _claimName(kind: string, name: string, owner: string, fix: string): void {
    const key = `${kind}/${name}`;
    const holder = this.claimedNames.get(key);
    if (holder !== undefined && holder !== owner) {
      fail(`${owner}: its ${kind} "${name}" would overwrite the ${kind} of the same name of ${holder} in namespace "${this.namespace}"; ${fix}`);
    }
    this.claimedNames.set(key, owner);
  }

  /** Objects of one kind and name in one namespace: the later silently replaces the earlier on apply. */
  private duplicateObjects(objects: readonly KubeObject[]): string[] {
    const seen = new Set<string>();
    const problems: string[] = [];
    for (const o of objects) {
      const key = `${o.apiVersion} ${o.kind} ${o.metadata?.namespace ?? ''}/${o.metadata?.name}`;
      if (seen.has(key)) problems.push(`${o.kind} "${o.metadata?.name}": synthesized twice in namespace "${o.metadata?.namespace ?? '-'}"; the second would replace the first on apply: rename one`);
      seen.add(key);
    }
    return problems;
  }

  /** @internal a Secret with literal values created with the `allowPlaintextInManifests` opt-in */
  public _registerLiteralSecret(secret: ApiObject): void {
    this.literalSecrets.add(secret);
  }

  /** Every Secret under the platform that carries values (any construct's) needs the opt-in. */
  private plaintextSecrets(): string[] {
    return this.node
      .findAll()
      .filter((c): c is ApiObject => c instanceof ApiObject && !this.literalSecrets.has(c))
      .map((o) => ({ o, json: o.toJson() as KubeObject }))
      .filter(({ json }) => json.kind === 'Secret' && [json.data, json.stringData].some((d) => d && Object.keys(d as object).length > 0))
      .map(
        ({ o, json }) =>
          `Secret "${json.metadata?.name}" (${o.node.path}): its values would be written in plain text to the synthesized manifests; ` +
          'reference an existing Secret with CredentialSecret.fromSecretName(scope, id, name, keys), or create it with ' +
          'CredentialSecret.fromLiteral(scope, id, { secretName, values, allowPlaintextInManifests: true }) if you really mean it',
      );
  }

  /** Every synthesized object under this platform, as JSON. */
  public synthesizedObjects(): KubeObject[] {
    return this.node
      .findAll()
      .filter((c): c is ApiObject => c instanceof ApiObject)
      .map((o) => o.toJson() as KubeObject);
  }

  private checkPolicy(): string[] {
    const objects = this.synthesizedObjects();
    return [...checkPlatformObjects(objects, { secretValues: this.secretValues, agentLabel: LABEL_AGENT }), ...this.plaintextSecrets(), ...this.duplicateObjects(objects)];
  }
}

/** What a Platform needs to know of a pool (avoids a cycle with agent-pool.ts). */
export interface IPoolRef extends IConstruct {
  readonly name: string;
  /** Warm pools' workers may reach the controller's worker lease API. */
  readonly mode: 'job' | 'warm';
  /** @internal a warm pool's git Secret volumes and egress labels, which the controller's pod gets */
  readonly _controllerFetch?: { secrets: Array<{ volume: Volume; mount: VolumeMount }>; podLabels: Record<string, string> };
}
