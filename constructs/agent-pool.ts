import * as path from 'path';
import { ApiObject, Lazy } from 'cdk8s';
import * as kplus from 'cdk8s-plus-30';
import { Construct } from 'constructs';
import type { Job } from 'kubernetes-types/batch/v1';
import type { Affinity, EnvVar, PodSpec, PodTemplateSpec, Toleration, Volume, VolumeMount } from 'kubernetes-types/core/v1';
import { stringify as toYaml } from 'yaml';
import type { AgentPolicySpec, ConfigFileSpec, PoolSpec, PushCredentialSpec } from '../policy/specs';
import { checkPolicyShape, mergePolicies, planPolicy } from '../core/agent-policy';
import { assertValidSpec, SPEC_API_VERSION } from '../policy/specs';
import type { EgressAllowlist } from './egress-allowlist';
import type { Harness } from '../core/harness';
import type { ICredentialGrantee, IPushGrantee, ResolvedGrant } from './credential-secret';
import { JOB_TEMPLATE_SLOTS } from '../core/job-template';
import { kubeObject } from './kube-object';
import { ANNOTATION_AGENT_SECRETS, capabilityLabel, instanceLabels, SECRETS_MOUNT, LABEL_AGENT, LABEL_HARNESS, LABEL_POOL, LABEL_SPEC_HASH, LABEL_TASK, selectorLabels, standardLabels } from '../core/labels';
import { Platform } from './platform';
import { GATEWAY_AUDIENCE, GATEWAY_TOKEN_DIR, MODEL_PROVIDERS, providerHost } from '../core/model-providers';
import { addSecretKeys, hardenedContainerSecurityContext, hardenedPodSecurityContext, scratchVolumes, secretVolumes } from './pod-hardening';
import { checkPodResources, PodResources, SandboxProfile } from './sandbox-profile';
import { checkDnsLabel, checkEnvMap, checkImageRef, checkInteger, checkLabels, fail } from '../core/validation';
import { stableJson } from '../core/stable-json';
import { WORKER_TOKEN_AUDIENCE, WORKER_TOKEN_PATH } from '../core/protocol';

export interface AgentPoolProps {
  /** Name of the pool; its objects are `pool-<name>`. @default - the construct id */
  readonly name?: string;
  /** The harnesses (agent CLIs) this pool runs. */
  readonly harnesses: Harness[];
  /** Capabilities the pool offers; each needs a harness that provides it. @default - its harnesses' capabilities */
  readonly capabilities?: string[];
  /** Warm workers in the pool's Deployment. @default 1 */
  readonly replicas?: number;
  /** Isolation of the pool's pods. `SandboxProfile.none()` is the explicit opt-out. @default SandboxProfile.gvisor() */
  readonly sandbox?: SandboxProfile;
  /** Agent container resources. @default - the sandbox profile's */
  readonly resources?: PodResources;
  /** Node placement. @default - none */
  readonly nodeSelector?: Record<string, string>;
  /** @default - none */
  readonly tolerations?: Toleration[];
  /** @default - none */
  readonly affinity?: Affinity;
  /** Environment for the agent (pool layer, below the task's). @default - none */
  readonly env?: Record<string, string>;
  /** Config files for the agent (pool layer: harness < pool < task). @default - none */
  readonly config?: ConfigFileSpec[];
  /** Worker pods that may be down at once during voluntary disruptions. @default 1 */
  readonly maxUnavailable?: number;
  /** Image of the pool's worker Deployment. @default - the first harness's image */
  readonly image?: string;
  /**
   * How the pool executes tasks. `"job"`: the controller creates one Job per
   * task from the pool's Job template (a fresh sandboxed pod per task; the
   * worker Deployment stays at 0 replicas and `replicas` is not used).
   * `"warm"`: the worker Deployment (`replicas` pods) leases tasks from the
   * controller and runs them one after another (no pod start per task; the
   * worker pods may reach the controller's worker lease API, never its task API).
   * @default "job"
   */
  readonly mode?: PoolMode;
  /** Runs of this pool at once; further tasks wait in the controller's queue. @default 10 */
  readonly concurrency?: number;
  /**
   * The agent policy of the pool's tasks: over each harness's policy, under the task's (a
   * deny always wins). Every harness of the pool must be able to enforce it.
   * @default - none
   */
  readonly policy?: AgentPolicy;
}

/** What the agent may do (see policy/schemas/common.schema.json agentPolicy). */
export type AgentPolicy = AgentPolicySpec;

/** How a pool executes tasks (see AgentPoolProps.mode). */
export type PoolMode = 'job' | 'warm';

/** Where the runner finds things in an agent pod; the runner's defaults match. */
export const AGENT_PATHS = {
  home: '/home/agent',
  workspace: '/workspace',
  tmp: '/tmp',
  artifacts: '/artifacts',
  task: '/etc/paddock/task',
  harness: '/etc/paddock/harness',
  harnesses: '/etc/paddock/harnesses',
  pool: '/etc/paddock/pool',
  secrets: SECRETS_MOUNT,
} as const;

/**
 * A pool of sandboxed agent pods for some capabilities: a warm worker
 * Deployment, the Job template that runs one task in the same sandbox, a
 * PodDisruptionBudget and a ServiceAccount (with no token mounted).
 */
export class AgentPool extends Construct implements ICredentialGrantee, IPushGrantee, kplus.IPodSelector, kplus.INetworkPolicyPeer {
  public readonly name: string;
  public readonly harnesses: readonly Harness[];
  public readonly capabilities: readonly string[];
  public readonly sandbox: SandboxProfile;
  public readonly platform: Platform;
  /** The worker Deployment (escape hatch: ApiObject.addJsonPatch). */
  public readonly workers: ApiObject;
  private readonly props: AgentPoolProps;
  private readonly resources: PodResources;
  private readonly env: Record<string, string>;
  private readonly grants: ResolvedGrant[] = [];
  private readonly pushGrants: PushCredentialSpec[] = [];
  private readonly allowlists: EgressAllowlist[] = [];
  /** How the pool executes tasks. */
  public readonly mode: PoolMode;
  /** Runs of this pool at once. */
  public readonly concurrency: number;

  constructor(scope: Construct, id: string, props: AgentPoolProps) {
    super(scope, id);
    this.platform = Platform.of(this);
    const where = `AgentPool "${props?.name ?? id}"`;
    this.name = checkDnsLabel(props?.name ?? id, `${where}: name`, 50);
    if (!Array.isArray(props?.harnesses) || props.harnesses.length === 0) {
      fail(`${where}: harnesses must list at least one harness, e.g. harnesses: [Harness.codex()]`);
    }
    this.props = props;
    this.harnesses = [...props.harnesses];
    const names = new Set<string>();
    for (const h of this.harnesses) {
      if (names.has(h.name)) fail(`${where}: harness "${h.name}" is listed twice`);
      names.add(h.name);
    }
    const provided = new Set(this.harnesses.map((h) => h.capability));
    this.capabilities = [...new Set(props.capabilities ?? this.harnesses.map((h) => h.capability))];
    for (const capability of this.capabilities) {
      if (!provided.has(capability)) {
        fail(`${where}: capability "${capability}" has no harness in this pool; add a harness that provides it (its harnesses provide: ${[...provided].join(', ')})`);
      }
    }
    checkInteger(props.replicas ?? 1, `${where}: replicas`, 0, 1000);
    if (props.mode !== undefined && props.mode !== 'job' && props.mode !== 'warm') {
      fail(`${where}: mode "${String(props.mode)}" is unknown; write mode: "job" (one Job per task) or mode: "warm" (worker Deployment)`);
    }
    this.mode = props.mode ?? 'job';
    if (this.mode === 'job' && props.replicas !== undefined && props.replicas > 0) {
      fail(`${where}: replicas: a pool in mode "job" (the default) runs one Job per task and no warm workers; remove replicas, or set mode: "warm" to keep ${props.replicas} warm workers`);
    }
    this.concurrency = checkInteger(props.concurrency ?? 10, `${where}: concurrency`, 1, 10000);
    checkInteger(props.maxUnavailable ?? 1, `${where}: maxUnavailable`, 0, 1000);
    this.sandbox = props.sandbox ?? SandboxProfile.gvisor();
    this.resources = props.resources ? checkPodResources(props.resources, `${where}: resources`) : this.sandbox.resources;
    this.env = checkEnvMap(props.env, `${where}: env`);
    if (props.nodeSelector !== undefined) checkLabels(props.nodeSelector, `${where}: nodeSelector`);
    if (props.image !== undefined) checkImageRef(props.image, `${where}: image`);
    const policyProblems = checkPolicyShape(props.policy, `${where}: policy`);
    for (const h of props.policy && !policyProblems.length ? this.harnesses : []) {
      policyProblems.push(...planPolicy(h.spec, mergePolicies([h.spec.policy, props.policy])).problems.map((p) => `${where}: policy: ${p}`));
    }
    if (policyProblems.length) fail(policyProblems.join('\n'));

    this.node.addValidation({ validate: () => this.ungrantedCredentials() });
    this.platform._registerPool(this);
    // The pool's own part of pool.json (env, config files) is checked against the schema now, not at synth.
    void this.spec;
    this.platform.useSandbox(this.sandbox);
    this.harnesses.forEach((h) => this.platform.useHarness(h));

    const ns = this.platform.namespace;
    const labels = standardLabels(ns, 'pool', { [LABEL_POOL]: this.name });
    kubeObject(this, 'service-account', {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: this.objectName, namespace: ns, labels },
      automountServiceAccountToken: false,
    });
    kubeObject(this, 'config', {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: this.objectName, namespace: ns, labels },
      data: Lazy.any({
        produce: () => ({
          'pool.json': stableJson(this.spec),
          'job-template.yaml': toYaml(this.jobTemplate(), { sortMapEntries: true, aliasDuplicateObjects: false }),
        }),
      }),
    });
    const workerSelector = selectorLabels(ns, 'worker', { [LABEL_POOL]: this.name });
    this.workers = kubeObject(this, 'workers', {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: this.objectName, namespace: ns, labels: standardLabels(ns, 'worker', { [LABEL_POOL]: this.name }) },
      spec: {
        // A job-mode pool keeps its worker Deployment (stable selectors, one field to switch modes) at 0.
        replicas: this.mode === 'warm' ? (props.replicas ?? 1) : 0,
        selector: { matchLabels: workerSelector },
        template: Lazy.any({ produce: () => this.workerPodTemplate() }),
      },
    });
    kubeObject(this, 'pdb', {
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: { name: this.objectName, namespace: ns, labels },
      spec: { maxUnavailable: props.maxUnavailable ?? 1, selector: { matchLabels: workerSelector } },
    });
    if (this.mode === 'warm') {
      // Warm workers lease tasks from the controller's worker lease API, and reach only that
      // port (not the task API: the agent runs in this pod). Job pods never talk to the controller.
      kubeObject(this, 'controller-egress', {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: `${this.objectName}-controller`, namespace: ns, labels },
        spec: {
          podSelector: { matchLabels: workerSelector },
          policyTypes: ['Egress'],
          egress: [{ to: [{ podSelector: { matchLabels: selectorLabels(ns, 'controller') } }], ports: [{ protocol: 'TCP', port: this.platform.controllerWorkerPort }] }],
        },
      });
    }
  }

  /** Labels every pod of this pool carries: its warm workers and its task Jobs' pods. */
  public get podSelectorLabels(): Record<string, string> {
    return { ...instanceLabels(this.platform.namespace), [LABEL_POOL]: this.name, [LABEL_AGENT]: 'true' };
  }

  /** cdk8s-plus: the pool's pods (workers and task Jobs), e.g. `new kplus.NetworkPolicy(chart, "np", { selector: pool })`. */
  public toPodSelectorConfig(): kplus.PodSelectorConfig {
    return { labelSelector: kplus.LabelSelector.of({ labels: this.podSelectorLabels }), namespaces: { names: [this.platform.namespace] } };
  }

  /** cdk8s-plus: the pool's pods as a network-policy peer, e.g. `deployment.connections.allowFrom(pool)`. */
  public toNetworkPolicyPeerConfig(): kplus.NetworkPolicyPeerConfig {
    return { podSelector: this.toPodSelectorConfig() };
  }

  /** cdk8s-plus: the pool is a pod selector. */
  public toPodSelector(): kplus.IPodSelector {
    return this;
  }

  /** Name of the pool's ServiceAccount, ConfigMap, Deployment and PDB. */
  public get objectName(): string {
    return `pool-${this.name}`;
  }

  /**
   * Let the pool's pods (workers and task Jobs) reach what the allowlist
   * allows. The allowlist also admits what this pool needs: its harnesses'
   * hosts and its tasks' git hosts (see EgressAllowlist). Under a `proxy`
   * allowlist the pods get HTTPS_PROXY / HTTP_PROXY / NO_PROXY (and pool.json
   * `egress`); a pool uses at most one such allowlist.
   */
  public allowEgressTo(allowlist: EgressAllowlist): void {
    if (Platform.of(allowlist) !== this.platform) {
      fail(`AgentPool "${this.name}": allowlist "${allowlist.name}" belongs to another platform`);
    }
    if (this.allowlists.includes(allowlist)) return;
    // The allowlist adds this pool's harness hosts and task git hosts to what it allows.
    allowlist._attach(this, this.allowlists);
    this.allowlists.push(allowlist);
  }

  /** The allowlist whose egress proxy this pool's pods use (HTTPS_PROXY), if any. */
  private get proxyAllowlist(): EgressAllowlist | undefined {
    return this.allowlists.find((a) => a.proxyUrl !== undefined);
  }

  /** The allowlists this pool may use. */
  public get egressAllowlists(): readonly EgressAllowlist[] {
    return this.allowlists;
  }

  /** The harness of that name in this pool. */
  public harness(name: string): Harness | undefined {
    return this.harnesses.find((h) => h.name === name);
  }

  /** The providers' hosts this pool's model calls reach through the gateway (not through its egress). */
  public get gatewayHosts(): string[] {
    return [...new Set(this.gatewayEnv.flatMap((e) => providerHost(e.name) ?? []))];
  }

  /** The model keys the gateway holds for this pool. */
  private get gatewayEnv(): Array<{ name: string; key: string }> {
    return this.grants.filter((g) => !g.exposeToAgent).flatMap((g) => g.env);
  }

  /** @internal called by CredentialSecret.grantTo */
  public _addCredential(grant: ResolvedGrant): void {
    const clash = (a: string, what: string) => fail(`AgentPool "${this.name}": ${what} "${a}" is granted twice; grant each once`);
    for (const e of grant.env) if (this.grants.some((g) => g.env.some((x) => x.name === e.name))) clash(e.name, 'environment variable');
    for (const f of grant.files) if (this.grants.some((g) => g.files.some((x) => x.path === f.path))) clash(f.path, 'file');
    if (grant.git && this.grants.some((g) => g.git?.host === grant.git!.host)) clash(grant.git.host, 'git credential for host');
    const volume = secretVolumeName(grant.secretName);
    const twin = this.grants.find((g) => g.secretName !== grant.secretName && secretVolumeName(g.secretName) === volume && (g.files.length || g.git));
    if (twin && (grant.files.length || grant.git)) {
      fail(`AgentPool "${this.name}": Secrets "${twin.secretName}" and "${grant.secretName}" would share the pod volume "${volume}" (volume names cannot hold '.'); rename one of the Secrets, e.g. "${grant.secretName.replace(/\./g, '-')}-files"`);
    }
    this.grants.push(grant);
    if (!grant.exposeToAgent && grant.env.length > 0) {
      this.platform.modelGateway._addGrant({ pool: this.name, serviceAccount: `system:serviceaccount:${this.platform.namespace}:${this.objectName}`, secretName: grant.secretName, env: grant.env });
    }
  }

  /** @internal called by CredentialSecret.grantPushTo */
  public _addPushCredential(grant: PushCredentialSpec): void {
    if (this.pushGrants.some((g) => g.host === grant.host)) fail(`AgentPool "${this.name}": a push credential for host "${grant.host}" is granted twice; grant each host once`);
    this.pushGrants.push(grant);
    this.platform._usePublisher()._allowPush(grant);
  }

  /** The push credentials of the pool (references; only the publish step mounts them). */
  public get pushCredentials(): readonly PushCredentialSpec[] {
    return this.pushGrants;
  }

  /**
   * Every credential variable a harness reads (`credentialEnv`) must reach the pool:
   * granted by a CredentialSecret, or set in the pool's `env` (a placeholder when a
   * gateway injects the key). A granted credential file (e.g. `.codex/auth.json`)
   * counts too: the CLI may log in with it instead.
   */
  private ungrantedCredentials(): string[] {
    if (this.grants.some((g) => g.files.length > 0)) return [];
    const granted = new Set([...this.grants.flatMap((g) => g.env.map((e) => e.name)), ...Object.keys(this.env)]);
    return this.harnesses.flatMap((h) =>
      h.credentialEnv
        .filter((name) => !granted.has(name) && h.spec.env?.[name] === undefined)
        .map(
          (name) =>
            `AgentPool "${this.name}": harness "${h.name}" reads its credential from ${name}, which nothing grants to this pool; ` +
            `grant it, e.g. CredentialSecret.fromSecretName(platform, "${name.toLowerCase().replace(/_/g, '-')}", "<secret name>", ["${name}"]).grantTo(pool), ` +
            `or grant a credential file the CLI logs in with, or set env: { ${name}: "<placeholder>" } on the pool when a gateway injects it`,
        ),
    );
  }

  /** The pool's agent policy (over its harnesses', under its tasks'). */
  public get policy(): AgentPolicy | undefined {
    return this.props.policy;
  }

  /** The pool spec (key pool.json of the pool's ConfigMap). */
  public get spec(): PoolSpec {
    const mounted = (g: ResolvedGrant, key: string) => `${AGENT_PATHS.secrets}/${g.secretName}/${key}`;
    const env = this.grants.filter((g) => g.exposeToAgent).flatMap((g) => g.env.map((e) => ({ name: e.name, secret: g.secretName, key: e.key })));
    const viaGateway = this.gatewayEnv;
    const files = this.grants.flatMap((g) => g.files.map((f) => ({ path: f.path, source: mounted(g, f.key), secret: g.secretName, key: f.key })));
    const git = this.grants
      .filter((g) => g.git)
      .map((g) => ({ host: g.git!.host, username: g.git!.username, passwordFile: mounted(g, g.git!.key), secret: g.secretName, key: g.git!.key }));
    const proxy = this.proxyAllowlist;
    const spec: PoolSpec = {
      apiVersion: SPEC_API_VERSION,
      kind: 'Pool',
      name: this.name,
      capabilities: [...this.capabilities],
      harnesses: this.harnesses.map((h) => h.name),
      mode: this.mode,
      concurrency: this.concurrency,
      ...(Object.keys(this.env).length ? { env: this.env } : {}),
      ...(this.props.config?.length ? { config: { files: this.props.config.map((f) => ({ base: 'home' as const, format: 'text' as const, ...f })) } } : {}),
      ...(this.props.policy && Object.keys(this.props.policy).length ? { policy: this.props.policy } : {}),
      ...(env.length || files.length || git.length
        ? { credentials: { ...(env.length ? { env } : {}), ...(files.length ? { files } : {}), ...(git.length ? { git } : {}) } }
        : {}),
      ...(this.pushGrants.length ? { push: [...this.pushGrants] } : {}),
      ...(proxy ? { egress: { proxy: proxy.proxyUrl, noProxy: proxy.noProxy } } : {}),
      ...(viaGateway.length
        ? {
            gateway: {
              url: `${this.platform.modelGateway.url}/${this.name}`,
              tokenFile: `${GATEWAY_TOKEN_DIR}/token`,
              credentials: viaGateway.map((e) => ({ env: e.name, provider: MODEL_PROVIDERS[e.name].name })),
            },
          }
        : {}),
    };
    assertValidSpec('Pool', spec, `AgentPool "${this.name}"`);
    return spec;
  }

  /**
   * The Job that runs one task in this pool, with slots (JOB_TEMPLATE_SLOTS)
   * for the task, its harness and its image. Stored in the pool's ConfigMap.
   */
  public jobTemplate(): Job {
    const ns = this.platform.namespace;
    const labels = standardLabels(ns, 'task', {
      [LABEL_POOL]: this.name,
      [LABEL_TASK]: JOB_TEMPLATE_SLOTS.task,
      [LABEL_HARNESS]: JOB_TEMPLATE_SLOTS.harness,
      [LABEL_SPEC_HASH]: JOB_TEMPLATE_SLOTS.specHash,
    });
    const podLabels = { ...labels, ...this.agentPodLabels() };
    const pod = this.podSpec({
      image: JOB_TEMPLATE_SLOTS.image,
      args: ['run'],
      fetchStep: true,
      extraVolumes: [
        { volume: { name: 'task', configMap: { name: JOB_TEMPLATE_SLOTS.taskConfigMap } }, mount: { name: 'task', mountPath: AGENT_PATHS.task, readOnly: true } },
        { volume: { name: 'harness', configMap: { name: JOB_TEMPLATE_SLOTS.harnessConfigMap } }, mount: { name: 'harness', mountPath: AGENT_PATHS.harness, readOnly: true } },
      ],
    });
    return {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: JOB_TEMPLATE_SLOTS.jobName, namespace: ns, labels },
      spec: {
        // The runner reports agent failures itself; the controller retries infrastructure failures.
        backoffLimit: 0,
        template: { metadata: { labels: podLabels, ...this.agentPodAnnotations() }, spec: { ...pod, restartPolicy: 'Never' } },
      },
    };
  }

  private workerPodTemplate(): PodTemplateSpec {
    const ns = this.platform.namespace;
    const harnessVolumes = this.harnesses.map((h) => ({
      volume: { name: `harness-${h.name}`, configMap: { name: this.platform.harnessConfigMapName(h) } },
      mount: { name: `harness-${h.name}`, mountPath: `${AGENT_PATHS.harnesses}/${h.name}`, readOnly: true },
    }));
    // The lease API's credential: a projected token of the pool's ServiceAccount, bound to
    // Paddock's audience (the API server refuses it) and short-lived. Only warm workers get one;
    // a Job's runner reports through its termination message and needs none.
    const token = {
      volume: {
        name: 'paddock-worker-token',
        projected: { defaultMode: 0o400, sources: [{ serviceAccountToken: { audience: WORKER_TOKEN_AUDIENCE, expirationSeconds: 600, path: path.posix.basename(WORKER_TOKEN_PATH) } }] },
      },
      mount: { name: 'paddock-worker-token', mountPath: path.posix.dirname(WORKER_TOKEN_PATH), readOnly: true },
    };
    return {
      metadata: { labels: { ...standardLabels(ns, 'worker', { [LABEL_POOL]: this.name }), ...this.agentPodLabels() }, ...this.agentPodAnnotations() },
      spec: this.podSpec({
        image: this.props.image ?? this.harnesses[0].image,
        // The container holds only the worker and its runs: after each run every other process goes, and /tmp and HOME are emptied.
        args: ['worker', '--pool', this.name, '--controller', this.platform.controllerWorkerUrl, '--isolation', 'container', '--wipe', AGENT_PATHS.tmp, '--wipe', AGENT_PATHS.home],
        extraVolumes: this.mode === 'warm' ? [...harnessVolumes, token] : harnessVolumes,
      }),
    };
  }

  /** The Secrets granted with exposeToAgent, which the policy lets the agent's container reference. */
  private agentPodAnnotations(): { annotations?: Record<string, string> } {
    const exposed = [...new Set(this.grants.filter((g) => g.exposeToAgent).map((g) => g.secretName))].sort();
    return exposed.length ? { annotations: { [ANNOTATION_AGENT_SECRETS]: exposed.join(',') } } : {};
  }

  private agentPodLabels(): Record<string, string> {
    return {
      [LABEL_AGENT]: 'true',
      ...Object.fromEntries(this.capabilities.map((c) => [capabilityLabel(c), 'true'])),
      ...Object.fromEntries(this.allowlists.map((a) => [a.podLabel, 'allow'])),
    };
  }

  private podSpec(opts: { image: string; args: string[]; extraVolumes: Array<{ volume: Volume; mount: VolumeMount }>; fetchStep?: boolean }): PodSpec {
    const sandbox = this.sandbox;
    const scratch = scratchVolumes([
      { name: 'tmp', mountPath: AGENT_PATHS.tmp, sizeLimit: sandbox.tmpSizeLimit },
      { name: 'home', mountPath: AGENT_PATHS.home, sizeLimit: sandbox.homeSizeLimit },
      { name: 'workspace', mountPath: AGENT_PATHS.workspace, sizeLimit: sandbox.workspaceSizeLimit },
      { name: 'artifacts', mountPath: AGENT_PATHS.artifacts, sizeLimit: '64Mi' },
    ]);
    const agentSecrets = this.agentSecretVolumes();
    // The pool's identity at the model gateway: a token for its audience only (the API server refuses it).
    const gatewayToken: Array<{ volume: Volume; mount: VolumeMount }> = this.gatewayEnv.length
      ? [
          {
            volume: { name: 'gateway-token', projected: { sources: [{ serviceAccountToken: { audience: GATEWAY_AUDIENCE, expirationSeconds: 3600, path: 'token' } }] } },
            mount: { name: 'gateway-token', mountPath: GATEWAY_TOKEN_DIR, readOnly: true },
          },
        ]
      : [];
    const gitSecrets = opts.fetchStep ? this.gitSecretVolumes : [];
    const baseEnv: EnvVar[] = [
      { name: 'HOME', value: AGENT_PATHS.home },
      { name: 'PADDOCK_POOL', value: this.name },
      ...proxyEnv(this.proxyAllowlist),
    ];
    const env: EnvVar[] = [
      ...baseEnv.slice(0, 2),
      ...this.grants.filter((g) => g.exposeToAgent).flatMap((g) => g.env.map((e) => ({ name: e.name, valueFrom: { secretKeyRef: { name: g.secretName, key: e.key } } }))),
      ...baseEnv.slice(2),
    ];
    const common = { image: opts.image, resources: { ...this.resources } as any, securityContext: hardenedContainerSecurityContext(sandbox.uid) };
    const specMounts = [{ name: 'pool', mountPath: AGENT_PATHS.pool, readOnly: true }, ...opts.extraVolumes.map((v) => v.mount)];
    return {
      serviceAccountName: this.objectName,
      // Agents never talk to the Kubernetes API.
      automountServiceAccountToken: false,
      // Service env vars would leak the cluster's layout into the agent's environment.
      enableServiceLinks: false,
      ...(sandbox.runtimeClassName ? { runtimeClassName: sandbox.runtimeClassName } : {}),
      securityContext: hardenedPodSecurityContext(sandbox.uid),
      ...(this.props.nodeSelector ? { nodeSelector: this.props.nodeSelector } : {}),
      ...(this.props.tolerations ? { tolerations: this.props.tolerations } : {}),
      ...(this.props.affinity ? { affinity: this.props.affinity } : {}),
      ...(opts.fetchStep
        ? {
            // The sources are fetched before the agent's container starts, by the only container that mounts the git Secrets.
            initContainers: [
              {
                name: 'fetch',
                ...common,
                args: ['run', '--phase', 'fetch'],
                env: baseEnv,
                volumeMounts: [...scratch.mounts, ...specMounts, ...gitSecrets.map((v) => v.mount)],
              },
            ],
          }
        : {}),
      containers: [
        {
          name: 'runner',
          ...common,
          args: opts.fetchStep ? [...opts.args, '--phase', 'agent'] : opts.args,
          env,
          volumeMounts: [...scratch.mounts, ...specMounts, ...agentSecrets.map((v) => v.mount), ...gatewayToken.map((v) => v.mount)],
        },
      ],
      volumes: [
        ...scratch.volumes,
        { name: 'pool', configMap: { name: this.objectName } },
        ...opts.extraVolumes.map((v) => v.volume),
        ...agentSecrets.map((v) => v.volume),
        ...gitSecrets.map((v) => v.volume),
        ...gatewayToken.map((v) => v.volume),
      ],
    };
  }

  /** Secret volumes of the granted files the agent may read (exposeToAgent); never git credentials. */
  private agentSecretVolumes(): Array<{ volume: Volume; mount: VolumeMount }> {
    const keys = new Map<string, Set<string>>();
    for (const g of this.grants) if (g.exposeToAgent) addSecretKeys(keys, g.secretName, g.files.map((f) => f.key));
    return secretVolumes(keys, AGENT_PATHS.secrets);
  }

  /** Secret volumes of the git credentials: the Job's fetch step (or, for a warm pool, the controller) mounts them, never the agent's container. */
  public get gitSecretVolumes(): Array<{ volume: Volume; mount: VolumeMount }> {
    const keys = new Map<string, Set<string>>();
    for (const g of this.grants) if (g.git) addSecretKeys(keys, g.secretName, [g.git.key]);
    return secretVolumes(keys, AGENT_PATHS.secrets);
  }

  /** @internal what the controller needs to fetch this warm pool's sources: its git Secrets and its egress. */
  public get _controllerFetch(): { secrets: Array<{ volume: Volume; mount: VolumeMount }>; podLabels: Record<string, string> } | undefined {
    if (this.mode !== 'warm') return undefined;
    const secrets = this.gitSecretVolumes;
    return { secrets, podLabels: Object.fromEntries(this.allowlists.map((a) => [a.podLabel, 'allow'])) };
  }
}

/** The pod volume of a Secret's files: a DNS label, so '.' becomes '-'. */
function secretVolumeName(secretName: string): string {
  return `secret-${secretName}`.replace(/\./g, '-').slice(0, 63).replace(/-+$/, '');
}

/** HTTPS_PROXY, HTTP_PROXY and NO_PROXY (upper and lower case: clients read either) for pods under a proxy allowlist. */
function proxyEnv(allowlist: EgressAllowlist | undefined): EnvVar[] {
  if (!allowlist?.proxyUrl) return [];
  const noProxy = allowlist.noProxy.join(',');
  return [
    ['HTTPS_PROXY', allowlist.proxyUrl],
    ['HTTP_PROXY', allowlist.proxyUrl],
    ['NO_PROXY', noProxy],
    ['https_proxy', allowlist.proxyUrl],
    ['http_proxy', allowlist.proxyUrl],
    ['no_proxy', noProxy],
  ].map(([name, value]) => ({ name, value }));
}
