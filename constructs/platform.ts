import { ApiObject, Lazy } from 'cdk8s';
import { Construct, IConstruct } from 'constructs';
import type { NetworkPolicyEgressRule, NetworkPolicyIngressRule } from 'kubernetes-types/networking/v1';
import type { Volume, VolumeMount } from 'kubernetes-types/core/v1';
import { checkPlatformObjects, KubeObject } from '../policy/rules';
import type { Harness } from '../core/harness';
import { imageRef, ImageOptions } from '../core/images';
import { kubeObject } from './kube-object';
import { ModelGateway } from './model-gateway';
import { LABEL_AGENT, LABEL_POOL, selectorLabels, standardLabels } from '../core/labels';
import { hardenedContainerSecurityContext, hardenedPodSecurityContext, scratchVolumes } from './pod-hardening';
import { checkPodResources, PodResources, SandboxProfile } from './sandbox-profile';
import { checkDnsLabel, checkInteger, fail } from '../core/validation';
import { stableJson } from '../core/stable-json';

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
}

const CONTROLLER = 'paddock-controller';
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
  /** The controller Deployment (escape hatch: ApiObject.addJsonPatch). */
  public readonly controller: ApiObject;
  public readonly controllerServiceName = CONTROLLER;
  private readonly clusterDns: Required<ClusterDnsOptions>;
  private readonly harnesses = new Map<string, Harness>();
  private readonly runtimeClasses = new Map<string, SandboxProfile>();
  private readonly poolsByName = new Map<string, IPoolRef>();
  private readonly secretValues: string[] = [];
  private gateway?: ModelGateway;
  private readonly apiServerEgress: NetworkPolicyEgressRule;

  constructor(scope: Construct, id: string, props: PlatformProps = {}) {
    super(scope, id);
    this.namespace = checkDnsLabel(props.namespace ?? 'paddock', 'Platform: namespace');
    this.imageOptions = props.imageOptions ?? {};
    this.clusterDns = {
      namespace: checkDnsLabel(props.clusterDns?.namespace ?? 'kube-system', 'Platform: clusterDns.namespace'),
      podLabels: props.clusterDns?.podLabels ?? { 'k8s-app': 'kube-dns' },
    };
    const controller = props.controller ?? {};
    const replicas = checkInteger(controller.replicas ?? 1, 'Platform: controller.replicas', 1, 10);
    this.controllerPort = checkInteger(controller.port ?? 8080, 'Platform: controller.port', 1024, 65535);
    this.controllerWorkerPort = checkInteger(controller.workerPort ?? 8081, 'Platform: controller.workerPort', 1024, 65535);
    if (this.controllerWorkerPort === this.controllerPort) {
      fail(`Platform: controller.workerPort ${this.controllerWorkerPort} is controller.port too; the worker lease API needs its own port (agent pods must not reach the task API), e.g. workerPort: ${this.controllerPort === 8081 ? 8082 : 8081}`);
    }
    const resources = checkPodResources(
      controller.resources ?? { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '500m', memory: '256Mi' } },
      'Platform: controller.resources',
    );
    const apiCidrs = props.apiServer?.cidrs ?? ['0.0.0.0/0'];
    const apiPorts = (props.apiServer?.ports ?? [443, 6443]).map((p, i) => checkInteger(p, `Platform: apiServer.ports[${i}]`, 1, 65535));
    if (apiCidrs.length === 0) fail('Platform: apiServer.cidrs must list at least one CIDR, e.g. ["10.0.0.1/32"]');
    this.apiServerEgress = { to: apiCidrs.map((cidr) => ({ ipBlock: { cidr } })), ports: apiPorts.map((port) => ({ protocol: 'TCP', port })) };

    const ns = this.namespace;
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
            'pod-security.kubernetes.io/enforce-version': 'v1.30',
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
      { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
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
                image: controller.image ?? imageRef('controller', this.imageOptions),
                // More than one replica: leader election through the coordination.k8s.io Lease "paddock-controller".
                args: [
                  'controller',
                  '--namespace',
                  ns,
                  '--port',
                  String(this.controllerPort),
                  '--worker-port',
                  String(this.controllerWorkerPort),
                  ...(replicas > 1 ? ['--leader-elect'] : []),
                ],
                env: [
                  { name: 'PADDOCK_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                  { name: 'PADDOCK_POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                ],
                ports: [
                  { name: 'http', containerPort: this.controllerPort, protocol: 'TCP' },
                  { name: 'workers', containerPort: this.controllerWorkerPort, protocol: 'TCP' },
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
        ],
      },
    });
    kubeObject(this, 'controller-pdb', {
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: { name: CONTROLLER, namespace: ns, labels },
      spec: replicas > 1 ? { minAvailable: 1, selector: { matchLabels: selector } } : { maxUnavailable: 1, selector: { matchLabels: selector } },
    });
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
        ingress: Lazy.any({ produce: () => this.controllerIngress() }),
        egress: [this.dnsEgressRule(), this.apiServerEgress],
      },
    });

    this.node.addValidation({ validate: () => this.checkPolicy() });
  }

  private controllerIngress(): NetworkPolicyIngressRule[] {
    const taskApi: NetworkPolicyIngressRule = {
      from: [{ podSelector: { matchExpressions: [{ key: LABEL_AGENT, operator: 'DoesNotExist' }] } }],
      ports: [{ protocol: 'TCP', port: this.controllerPort }],
    };
    const warmPools = [...this.poolsByName.values()].filter((p) => p.mode === 'warm').map((p) => p.name).sort();
    if (warmPools.length === 0) return [taskApi];
    const workers: NetworkPolicyIngressRule = {
      from: [{ podSelector: { matchLabels: selectorLabels(this.namespace, 'worker'), matchExpressions: [{ key: LABEL_POOL, operator: 'In', values: warmPools }] } }],
      ports: [{ protocol: 'TCP', port: this.controllerWorkerPort }],
    };
    return [taskApi, workers];
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
    const known = this.runtimeClasses.get(name);
    if (known) {
      if (known.handler !== profile.handler || known.createRuntimeClass !== profile.createRuntimeClass) {
        fail(`SandboxProfile: two profiles use RuntimeClass "${name}" with different settings; give one another runtimeClassName`);
      }
      return;
    }
    this.runtimeClasses.set(name, profile);
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
    if (this.poolsByName.has(pool.name)) {
      fail(`AgentPool "${pool.name}": a pool with this name already exists in platform "${this.namespace}"; pool names must be unique`);
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

  /** @internal literal credential values, which the policy keeps out of every ConfigMap */
  public _registerSecretValues(values: string[]): void {
    this.secretValues.push(...values);
  }

  /** Every synthesized object under this platform, as JSON. */
  public synthesizedObjects(): KubeObject[] {
    return this.node
      .findAll()
      .filter((c): c is ApiObject => c instanceof ApiObject)
      .map((o) => o.toJson() as KubeObject);
  }

  private checkPolicy(): string[] {
    return checkPlatformObjects(this.synthesizedObjects(), { secretValues: this.secretValues, agentLabel: LABEL_AGENT });
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
