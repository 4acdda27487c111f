/**
 * `pulumi up` for Paddock: the AgentPlatform component. It builds the same
 * construct tree as `cdk8s synth` (buildPlatform + synthesize, so the same
 * validations and security policy run), then registers every synthesized
 * object as a typed @pulumi/kubernetes resource. The only thing it adds is
 * what the cdk8s path leaves out of band: the credential Secrets, made from
 * Pulumi secrets so their values stay encrypted in the state.
 *
 *   new AgentPlatform("agents", { ...definition, credentialValues: { "openai-api": { OPENAI_API_KEY: key } } }, { provider });
 */
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { App, Chart } from 'cdk8s';
import { LABEL_TASK, Platform, standardLabels, synthesize } from '../../constructs';
import type { KubeObject } from '../../policy/rules';
import { buildPlatform, PlatformDefinition } from '../platform-definition';

/** The component's Pulumi type token. */
export const AGENT_PLATFORM_TYPE = 'paddock:index:AgentPlatform';

/**
 * Annotation on task Jobs that tells the Pulumi Kubernetes provider not to wait for
 * the Job to finish (an agent task may run for longer than the provider's timeout, and
 * its outcome is the task's result, not the deployment's). The one field the Pulumi
 * path adds to a synthesized object; `awaitTaskJobs: true` leaves it off.
 */
export const SKIP_AWAIT_ANNOTATION = 'pulumi.com/skipAwait';

/** Secret name → key → value. Values may be plain strings, but Pulumi secrets are the point. */
export type CredentialValues = Record<string, Record<string, pulumi.Input<string>>>;

export interface AgentPlatformArgs extends PlatformDefinition {
  /**
   * Values of the credential Secrets, by Secret name and key, e.g.
   * `{ "openai-api": { OPENAI_API_KEY: config.requireSecret("openaiApiKey") } }`.
   * Each entry becomes a Kubernetes Secret in the platform namespace whose data is a
   * Pulumi secret (encrypted in the state, hidden in previews), even if a plain string
   * was given. The Secret must be one of `credentials[].secretName` and list every key
   * declared there. Credentials without an entry are expected to exist already
   * (created out of band or by external-secrets), exactly as with `cdk8s synth`.
   * @default - none: every credential Secret exists already
   */
  readonly credentialValues?: CredentialValues;
  /**
   * Make `pulumi up` wait for each declared task's Job to complete (and fail when it fails).
   * @default false - the Jobs are created and left to run (annotation `pulumi.com/skipAwait`)
   */
  readonly awaitTaskJobs?: boolean;
  /**
   * Add constructs to the platform before it is synthesized, e.g. a CiliumNetworkPolicy as
   * a cdk8s ApiObject; they go through the same validations as the rest. Kinds without a
   * typed @pulumi/kubernetes class are registered as `kubernetes.apiextensions.CustomResource`.
   * @default - nothing added
   */
  readonly extend?: (platform: Platform) => void;
}

type KubeResourceClass = new (name: string, args: any, opts?: pulumi.CustomResourceOptions) => pulumi.CustomResource;

interface KindInfo {
  readonly resource: KubeResourceClass;
  /** Top-level fields the class passes on (besides apiVersion and kind); anything else would be dropped silently. */
  readonly fields: readonly string[];
}

/** apiVersion/kind → the typed @pulumi/kubernetes class that registers it. */
export const TYPED_KINDS: Readonly<Record<string, KindInfo>> = {
  'v1/Namespace': { resource: k8s.core.v1.Namespace, fields: ['metadata', 'spec'] },
  'v1/ConfigMap': { resource: k8s.core.v1.ConfigMap, fields: ['metadata', 'data', 'binaryData', 'immutable'] },
  'v1/Secret': { resource: k8s.core.v1.Secret, fields: ['metadata', 'data', 'stringData', 'type', 'immutable'] },
  'v1/Service': { resource: k8s.core.v1.Service, fields: ['metadata', 'spec'] },
  'v1/ServiceAccount': { resource: k8s.core.v1.ServiceAccount, fields: ['metadata', 'automountServiceAccountToken', 'imagePullSecrets', 'secrets'] },
  'v1/Pod': { resource: k8s.core.v1.Pod, fields: ['metadata', 'spec'] },
  'apps/v1/Deployment': { resource: k8s.apps.v1.Deployment, fields: ['metadata', 'spec'] },
  'apps/v1/StatefulSet': { resource: k8s.apps.v1.StatefulSet, fields: ['metadata', 'spec'] },
  'apps/v1/DaemonSet': { resource: k8s.apps.v1.DaemonSet, fields: ['metadata', 'spec'] },
  'batch/v1/Job': { resource: k8s.batch.v1.Job, fields: ['metadata', 'spec'] },
  'batch/v1/CronJob': { resource: k8s.batch.v1.CronJob, fields: ['metadata', 'spec'] },
  'rbac.authorization.k8s.io/v1/Role': { resource: k8s.rbac.v1.Role, fields: ['metadata', 'rules'] },
  'rbac.authorization.k8s.io/v1/RoleBinding': { resource: k8s.rbac.v1.RoleBinding, fields: ['metadata', 'roleRef', 'subjects'] },
  'rbac.authorization.k8s.io/v1/ClusterRole': { resource: k8s.rbac.v1.ClusterRole, fields: ['metadata', 'rules', 'aggregationRule'] },
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': { resource: k8s.rbac.v1.ClusterRoleBinding, fields: ['metadata', 'roleRef', 'subjects'] },
  'networking.k8s.io/v1/NetworkPolicy': { resource: k8s.networking.v1.NetworkPolicy, fields: ['metadata', 'spec'] },
  'policy/v1/PodDisruptionBudget': { resource: k8s.policy.v1.PodDisruptionBudget, fields: ['metadata', 'spec'] },
  'node.k8s.io/v1/RuntimeClass': { resource: k8s.node.v1.RuntimeClass, fields: ['metadata', 'handler', 'overhead', 'scheduling'] },
};

/** Created before anything else: everything namespaced lives in the one, pods name the others. */
const FIRST_KINDS = new Set(['v1/Namespace', 'node.k8s.io/v1/RuntimeClass']);
/** Kinds that run pods for as long as they exist: created after the network policies, RBAC, ConfigMaps and Secrets they rely on. */
const WORKLOAD_KINDS = new Set(['v1/Pod', 'apps/v1/Deployment', 'apps/v1/StatefulSet', 'apps/v1/DaemonSet', 'apps/v1/ReplicaSet']);
/**
 * Kinds that run a task once: created last, once the workloads are ready (the Pulumi
 * Kubernetes provider waits for Deployments to roll out), so a task's pod never starts
 * before the egress proxy or the controller it talks to and fails for good (backoffLimit 0).
 */
const TASK_KINDS = new Set(['batch/v1/Job', 'batch/v1/CronJob']);
/** Credential values shorter than this are not searched for in the manifests (too likely to match by chance). */
const MIN_LEAK_CHECK_LENGTH = 8;

/**
 * RuntimeClasses are cluster-scoped: per Kubernetes provider, the first AgentPlatform
 * that needs one creates it and later ones depend on that resource.
 */
let RUNTIME_CLASSES = new WeakMap<object, Map<string, { obj: KubeObject; resource: pulumi.CustomResource; owner: string }>>();
const DEFAULT_PROVIDER = {};

/** @internal Forget the RuntimeClasses created so far (tests that model several programs in one process). */
export function _forgetRuntimeClasses(): void {
  RUNTIME_CLASSES = new WeakMap();
}

/**
 * A ResourceError whose message stays as written. Pulumi's serializer prefixes the
 * message of an error thrown inside an input ("error serializing property ..."),
 * which would bury what the user must read.
 */
function plainResourceError(message: string, resource: pulumi.Resource): pulumi.ResourceError {
  const error = new pulumi.ResourceError(message, resource, true);
  Object.defineProperty(error, 'message', { get: () => message, set: () => undefined, enumerable: false, configurable: true });
  return error;
}

/** The Pulumi resource name of a synthesized object: stable, unique per kind, namespace and name. */
export function kubernetesResourceName(component: string, obj: KubeObject): string {
  const ns = obj.metadata?.namespace;
  return [component, obj.kind, ...(ns ? [ns] : []), obj.metadata?.name ?? ''].join('-').toLowerCase();
}

/**
 * The platform's Kubernetes objects, exactly as `cdk8s synth` writes them for the same
 * definition (same chart settings, every validation run), without writing any file.
 */
export function synthesizePlatform(def: PlatformDefinition, extend?: (platform: Platform) => void): { platform: Platform; objects: KubeObject[] } {
  // An App writes to its outdir only in app.synth(), which is never called here.
  const app = new App();
  const chart = new Chart(app, 'paddock', { disableResourceNameHashes: true });
  const platform = buildPlatform(chart, 'platform', def, extend);
  return { platform, objects: synthesize(chart) };
}

/**
 * Paddock's platform as a Pulumi component: namespace, controller, pools,
 * harnesses, sandboxes, egress policies, tasks, and the credential Secrets
 * from Pulumi secrets. Kubernetes resources are children of the component;
 * pass a provider with `{ provider }` or `{ providers: [...] }`.
 */
export class AgentPlatform extends pulumi.ComponentResource {
  /** The platform namespace (known once the Namespace exists). */
  public readonly namespace: pulumi.Output<string>;
  /** Names of the agent pools. */
  public readonly poolNames: pulumi.Output<string[]>;
  /** Name of the controller's Service in the namespace. */
  public readonly controllerService: pulumi.Output<string>;
  /** The controller's in-cluster URL, e.g. http://paddock-controller.paddock.svc. */
  public readonly controllerUrl: pulumi.Output<string>;
  /** Declared task of a job pool → the Job that runs it (its name carries the task spec's hash); a warm pool's tasks have none (its workers run them). */
  public readonly taskJobNames: pulumi.Output<Record<string, string>>;
  /** Names of the Secrets this component created from `credentialValues`. */
  public readonly credentialSecretNames: pulumi.Output<string[]>;
  /** Every Kubernetes resource registered, in registration order (credential Secrets included). */
  public readonly resources: readonly pulumi.CustomResource[];

  constructor(name: string, args: AgentPlatformArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super(AGENT_PLATFORM_TYPE, name, {}, opts);
    // Bad args: a ResourceError attached to this component, without a stack trace (the message says it all).
    const fail: (message: string) => never = (message) => {
      throw new pulumi.ResourceError(`AgentPlatform "${name}": ${message}`, this, true);
    };

    const shapeProblems = checkDefinitionShape(args);
    if (shapeProblems.length) fail(shapeProblems.join('; '));
    let synthesized: { platform: Platform; objects: KubeObject[] };
    try {
      synthesized = synthesizePlatform(args, args.extend);
    } catch (err) {
      // The construct library's messages name the construct and field, e.g.
      // `AgentPool "codex": replicas: must be an integer from 0 to 1000, got -1`.
      fail(`invalid platform definition: ${(err as Error).message}`);
    }
    const { platform, objects } = synthesized;
    const ns = platform.namespace;
    const credentialValues = args.credentialValues ?? {};
    const credentialProblems = checkCredentialValues(credentialValues, args.credentials ?? []);
    for (const secretName of Object.keys(credentialValues)) {
      if (objects.some((o) => o.kind === 'Secret' && o.metadata?.name === secretName && o.metadata?.namespace === ns)) {
        credentialProblems.push(`credentialValues[${JSON.stringify(secretName)}]: the platform already synthesizes Secret "${secretName}"; give its values in one place`);
      }
    }
    if (credentialProblems.length) fail(credentialProblems.join('; '));
    for (const obj of objects) {
      const info = TYPED_KINDS[gvk(obj)];
      const extra = info ? Object.keys(obj).filter((k) => k !== 'apiVersion' && k !== 'kind' && !info.fields.includes(k)) : [];
      if (extra.length) fail(`${obj.kind} "${obj.metadata?.name}": top-level field(s) ${extra.join(', ')} are not part of ${obj.apiVersion} ${obj.kind}`);
    }
    const names = new Map<string, KubeObject>();
    for (const obj of objects) {
      const resourceName = kubernetesResourceName(name, obj);
      const clash = names.get(resourceName);
      if (clash) fail(`${obj.apiVersion} ${obj.kind} "${obj.metadata?.name}" and ${clash.apiVersion} ${clash.kind} "${clash.metadata?.name}" would share the Pulumi name "${resourceName}"; rename one`);
      names.set(resourceName, obj);
    }

    const resources: pulumi.CustomResource[] = [];
    const register = (obj: KubeObject, dependsOn: pulumi.Resource[]): pulumi.CustomResource => {
      const info = TYPED_KINDS[gvk(obj)];
      const resourceName = kubernetesResourceName(name, obj);
      const options: pulumi.CustomResourceOptions = { parent: this, ...(dependsOn.length ? { dependsOn } : {}) };
      const resource = info
        ? new info.resource(resourceName, obj, options)
        : new k8s.apiextensions.CustomResource(resourceName, obj as k8s.apiextensions.CustomResourceArgs, options);
      resources.push(resource);
      return resource;
    };
    const forPulumi = (obj: KubeObject): KubeObject =>
      obj.kind === 'Job' && !args.awaitTaskJobs
        ? { ...obj, metadata: { ...obj.metadata, annotations: { ...(obj.metadata as any)?.annotations, [SKIP_AWAIT_ANNOTATION]: 'true' } } as KubeObject['metadata'] }
        : obj;

    // 1. Namespace and RuntimeClasses (a RuntimeClass another AgentPlatform created already is reused).
    const runtimeClasses = RUNTIME_CLASSES.get(this.getProvider('kubernetes::') ?? DEFAULT_PROVIDER) ?? new Map();
    RUNTIME_CLASSES.set(this.getProvider('kubernetes::') ?? DEFAULT_PROVIDER, runtimeClasses);
    const runtimeClassSpec = (o: KubeObject) => JSON.stringify([o.handler, o.overhead, o.scheduling]);
    for (const o of objects.filter((x) => x.kind === 'RuntimeClass')) {
      const known = runtimeClasses.get(o.metadata!.name!);
      if (known && runtimeClassSpec(known.obj) !== runtimeClassSpec(o)) {
        fail(`RuntimeClass "${o.metadata?.name}" is created by AgentPlatform "${known.owner}" with other settings (handler, overhead, scheduling); give one sandbox profile another runtimeClassName`);
      }
    }
    const first = objects
      .filter((o) => FIRST_KINDS.has(gvk(o)))
      .map((o) => {
        if (o.kind !== 'RuntimeClass') return { obj: o, resource: register(o, []) };
        const known = runtimeClasses.get(o.metadata!.name!);
        if (known) return { obj: o, resource: known.resource };
        const resource = register(o, []);
        runtimeClasses.set(o.metadata!.name!, { obj: o, resource, owner: name });
        return { obj: o, resource };
      });
    const firstResources = first.map((f) => f.resource);
    const namespaceResource = first.find((f) => f.obj.kind === 'Namespace')?.resource as k8s.core.v1.Namespace | undefined;

    // 2. The credential Secrets, from Pulumi secrets.
    const secretResources = Object.entries(credentialValues).map(([secretName, values]) => {
      const checked = pulumi.all(values).apply((plain) => {
        const leaks = findCredentialLeaks(objects, Object.values(plain));
        if (leaks.length) {
          throw plainResourceError(
            `AgentPlatform "${name}": a value of Secret "${secretName}" appears in plain text in ${leaks.join(', ')}; ` +
              'keep credentials out of prompts, env and config, and grant them with credentials[].grants',
            this,
          );
        }
        return plain;
      });
      const secret = new k8s.core.v1.Secret(
        `${name}-secret-${ns}-${secretName}`.toLowerCase(),
        {
          metadata: { name: secretName, namespace: ns, labels: standardLabels(ns, 'credentials') },
          type: 'Opaque',
          stringData: pulumi.secret(checked),
        },
        { parent: this, dependsOn: namespaceResource ? [namespaceResource] : [], additionalSecretOutputs: ['data', 'stringData'] },
      );
      resources.push(secret);
      return secret;
    });

    // 3. Everything that does not start pods: network policies, RBAC, ConfigMaps, Services, PDBs.
    const startsPods = (o: KubeObject) => WORKLOAD_KINDS.has(gvk(o)) || TASK_KINDS.has(gvk(o));
    const middle = objects
      .filter((o) => !FIRST_KINDS.has(gvk(o)) && !startsPods(o))
      .map((o) => ({ obj: o, resource: register(o, firstResources) }));

    // 4. Workloads, once their sandbox, network floor, identity, config and credentials exist.
    const prerequisites = [...firstResources, ...secretResources, ...middle.map((m) => m.resource)];
    const workloads = objects.filter((o) => WORKLOAD_KINDS.has(gvk(o))).map((o) => ({ obj: o, resource: register(o, prerequisites) }));

    // 5. Task Jobs, once the workloads (egress proxy, controller, pools) are up.
    const tasks = objects
      .filter((o) => TASK_KINDS.has(gvk(o)))
      .map((o) => ({ obj: o, resource: register(forPulumi(o), [...prerequisites, ...workloads.map((w) => w.resource)]) }));

    const service = middle.find((m) => m.obj.kind === 'Service' && m.obj.metadata?.name === platform.controllerServiceName)?.resource as k8s.core.v1.Service | undefined;
    const jobs = tasks.filter((t) => t.obj.kind === 'Job' && (t.obj.metadata?.labels ?? {})[LABEL_TASK]);

    this.resources = resources;
    this.namespace = namespaceResource ? namespaceResource.metadata.name : pulumi.output(ns);
    this.poolNames = pulumi.output(platform.poolNames);
    this.controllerService = service ? service.metadata.name : pulumi.output(platform.controllerServiceName);
    this.controllerUrl = service ? pulumi.interpolate`http://${service.metadata.name}.${service.metadata.namespace}.svc` : pulumi.output(platform.controllerUrl);
    this.taskJobNames = pulumi.all(
      Object.fromEntries(jobs.map((j) => [(j.obj.metadata?.labels ?? {})[LABEL_TASK], (j.resource as k8s.batch.v1.Job).metadata.name])),
    ) as pulumi.Output<Record<string, string>>;
    this.credentialSecretNames = pulumi.all(secretResources.map((s) => s.metadata.name));
    this.registerOutputs({
      namespace: this.namespace,
      poolNames: this.poolNames,
      controllerService: this.controllerService,
      controllerUrl: this.controllerUrl,
      taskJobNames: this.taskJobNames,
      credentialSecretNames: this.credentialSecretNames,
    });
  }
}

function gvk(obj: { apiVersion: string; kind: string }): string {
  return `${obj.apiVersion}/${obj.kind}`;
}

/**
 * The shapes buildPlatform walks, checked before it walks them, so a wrong type is
 * reported by its path in the args rather than as a TypeError.
 */
export function checkDefinitionShape(args: AgentPlatformArgs): string[] {
  if (!isObject(args)) return ['args: must be an object describing the platform, e.g. { pools: [{ name: "codex", harnesses: ["codex"] }] }'];
  const problems: string[] = [];
  const list = (value: unknown, field: string, example: string, required = false): unknown[] => {
    if (value === undefined && !required) return [];
    if (!Array.isArray(value)) {
      problems.push(`args.${field}: must be a list, e.g. ${example}`);
      return [];
    }
    return value;
  };
  const item = (value: unknown, field: string, example: string): value is Record<string, unknown> => {
    if (isObject(value)) return true;
    problems.push(`args.${field}: must be an object, e.g. ${example}`);
    return false;
  };
  list(args.pools, 'pools', '[{ name: "codex", harnesses: ["codex"] }]', true).forEach((p, i) => {
    if (!item(p, `pools[${i}]`, '{ name: "codex", harnesses: ["codex"] }')) return;
    list(p.harnesses, `pools[${i}].harnesses`, '["codex"] or [{ preset: "codex", defaultModel: "gpt-5-codex" }]', true);
    list(p.egress, `pools[${i}].egress`, '["public-https"]');
    if (p.sandbox !== undefined) item(p.sandbox, `pools[${i}].sandbox`, '{ type: "gvisor" }');
  });
  list(args.egress, 'egress', '[{ name: "public-https", rules: [{ cidr: "0.0.0.0/0", ports: [443] }] }]').forEach((e, i) => {
    if (item(e, `egress[${i}]`, '{ name: "public-https", rules: [{ cidr: "0.0.0.0/0", ports: [443] }] }')) {
      list(e.rules, `egress[${i}].rules`, '[{ cidr: "0.0.0.0/0", ports: [443] }]');
    }
  });
  list(args.credentials, 'credentials', '[{ secretName: "openai-api", keys: ["OPENAI_API_KEY"], grants: { codex: {} } }]').forEach((c, i) => {
    if (!item(c, `credentials[${i}]`, '{ secretName: "openai-api", keys: ["OPENAI_API_KEY"], grants: { codex: {} } }')) return;
    list(c.keys, `credentials[${i}].keys`, '["OPENAI_API_KEY"]', true);
    if (!isObject(c.grants)) problems.push(`args.credentials[${i}].grants: must map pool names to grants, e.g. { codex: {} }`);
  });
  list(args.tasks, 'tasks', '[{ name: "fix-tests", pool: "codex", prompt: "..." }]').forEach((t, i) => {
    if (item(t, `tasks[${i}]`, '{ name: "fix-tests", pool: "codex", prompt: "..." }')) list(t.sources, `tasks[${i}].sources`, '[{ url: "https://github.com/org/repo.git" }]');
  });
  if (args.credentialValues !== undefined && !isObject(args.credentialValues)) {
    problems.push('args.credentialValues: must map Secret names to { key: value }, e.g. { "openai-api": { OPENAI_API_KEY: config.requireSecret("openaiApiKey") } }');
  }
  if (args.extend !== undefined && typeof args.extend !== 'function') problems.push('args.extend: must be a function (platform) => void');
  return problems;
}

/** Each credentialValues entry must name a declared credential and give exactly its declared keys. */
export function checkCredentialValues(values: CredentialValues, credentials: PlatformDefinition['credentials'] & object): string[] {
  const problems: string[] = [];
  const declared = new Map(credentials.map((c, i) => [c.secretName, { keys: c.keys, index: i }]));
  for (const [secretName, entries] of Object.entries(values)) {
    const field = `credentialValues[${JSON.stringify(secretName)}]`;
    const credential = declared.get(secretName);
    if (!credential) {
      problems.push(`${field}: no credential uses Secret "${secretName}"; declare it in credentials (declared: ${[...declared.keys()].join(', ') || 'none'})`);
      continue;
    }
    if (!isObject(entries)) {
      problems.push(`${field}: must map keys to values, e.g. { ${credential.keys[0]}: config.requireSecret("...") }`);
      continue;
    }
    for (const [key, value] of Object.entries(entries)) {
      if (!credential.keys.includes(key)) {
        problems.push(`${field}[${JSON.stringify(key)}]: Secret "${secretName}" is declared with keys ${credential.keys.join(', ')} (credentials[${credential.index}].keys); add the key there or fix its name`);
      } else if (value === undefined || value === null) {
        problems.push(`${field}[${JSON.stringify(key)}]: has no value; give a string or a Pulumi secret such as config.requireSecret("...")`);
      }
    }
    const missing = credential.keys.filter((k) => !(k in entries));
    if (missing.length) {
      problems.push(`${field}: missing ${missing.map((k) => `"${k}"`).join(', ')}, declared in credentials[${credential.index}].keys; pods that use it would not start`);
    }
  }
  return problems;
}

/** Where in the synthesized objects any of the values appears in plain text ("ConfigMap pool-codex"). */
export function findCredentialLeaks(objects: readonly KubeObject[], values: readonly unknown[]): string[] {
  const secrets = values.filter((v): v is string => typeof v === 'string' && v.length >= MIN_LEAK_CHECK_LENGTH);
  if (secrets.length === 0) return [];
  const contains = (node: unknown): boolean => {
    if (typeof node === 'string') return secrets.some((s) => node.includes(s));
    if (Array.isArray(node)) return node.some(contains);
    if (isObject(node)) return Object.entries(node).some(([k, v]) => contains(k) || contains(v));
    return false;
  };
  return objects.filter(contains).map((o) => `${o.kind} "${o.metadata?.name}"`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
