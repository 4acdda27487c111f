/**
 * Paddock's security rules, in one place. They run on the synthesized
 * objects of a platform at synth time (Platform registers them as a
 * construct validation), so `cdk8s synth`, `pulumi up` and library users all
 * get them. Each rule returns messages; synthesis fails listing all of them.
 */
import type { PodSpec, PodTemplateSpec, SecurityContext } from 'kubernetes-types/core/v1';
import type { LabelSelector } from 'kubernetes-types/meta/v1';
import { parse as parseYaml } from 'yaml';
import { validateCiliumNetworkPolicy } from './cilium';

/** A synthesized Kubernetes object, as plain JSON. */
export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
  readonly [key: string]: unknown;
}

export interface PolicyContext {
  /** Values known to be secret (literal credentials); none may appear in a ConfigMap. */
  readonly secretValues: readonly string[];
  /** Label that marks pods running agent code. */
  readonly agentLabel: string;
}

/** Keys in ConfigMaps that hold a whole manifest to be checked like a synthesized object. */
const EMBEDDED_MANIFEST_KEY = /\.ya?ml$/;

/** Shapes of well-known credentials, caught even when Paddock never saw the value. */
const SECRET_PATTERNS: Array<[string, RegExp]> = [
  ['an OpenAI API key', /\bsk-(proj-|ant-)?[A-Za-z0-9_-]{20,}/],
  ['a GitHub token', /\b(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}|\bgithub_pat_[A-Za-z0-9_]{30,}/],
  ['a Google API key', /\bAIza[0-9A-Za-z_-]{35}\b/],
  ['an AWS access key id', /\b(AKIA|ASIA)[0-9A-Z]{16}\b/],
  ['a private key', /-----BEGIN [A-Z ]*PRIVATE KEY-----/],
];

export function checkPlatformObjects(objects: readonly KubeObject[], ctx: PolicyContext): string[] {
  const expanded = objects.flatMap((o) => [o, ...embeddedManifests(o)]);
  return [
    ...expanded.flatMap((o) => checkPodSecurityRestricted(o)),
    ...expanded.flatMap((o) => checkRbacNoWildcards(o)),
    ...objects.flatMap((o) => checkNoSecretsInConfigMap(o, ctx.secretValues)),
    ...checkAgentPodsDenyByDefault(expanded, ctx.agentLabel),
    ...expanded.flatMap((o) => checkNoSecretsForAgents(o, ctx.agentLabel)),
    ...objects.flatMap((o) => validateCiliumNetworkPolicy(o)),
  ];
}

function describe(o: KubeObject): string {
  return `${o.kind} "${o.metadata?.name ?? '?'}"`;
}

/** Job templates stored in ConfigMaps are checked as if they were synthesized directly. */
function embeddedManifests(o: KubeObject): KubeObject[] {
  if (o.kind !== 'ConfigMap' || !o.data) return [];
  return Object.entries(o.data as Record<string, string>)
    .filter(([key]) => EMBEDDED_MANIFEST_KEY.test(key))
    .map(([key, text]) => {
      const parsed = parseYaml(text) as KubeObject;
      const name = `${parsed?.metadata?.name ?? '?'} (${key} in ConfigMap "${o.metadata?.name}")`;
      return { ...parsed, metadata: { ...parsed.metadata, name, namespace: parsed?.metadata?.namespace ?? o.metadata?.namespace } };
    })
    .filter((p) => typeof p.kind === 'string');
}

export function podTemplateOf(o: KubeObject): PodTemplateSpec | undefined {
  const spec = o.spec as Record<string, any> | undefined;
  switch (o.kind) {
    case 'Pod':
      return { metadata: o.metadata, spec: o.spec as PodSpec };
    case 'Deployment':
    case 'StatefulSet':
    case 'DaemonSet':
    case 'ReplicaSet':
    case 'Job':
      return spec?.template;
    case 'CronJob':
      return spec?.jobTemplate?.spec?.template;
    default:
      return undefined;
  }
}

const RESTRICTED_VOLUME_TYPES = new Set(['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret']);

/** The Pod Security version the Platform's namespace enforces (`pod-security.kubernetes.io/enforce-version`). */
export const POD_SECURITY_VERSION = 'v1.30';

/** Capabilities Pod Security "baseline" lets a container add (restricted: NET_BIND_SERVICE only, Linux pods). */
const BASELINE_CAPABILITIES = new Set(['AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT']);

/** Namespaced sysctls Pod Security allows, with the minor version that first allows each. */
const SAFE_SYSCTLS: ReadonlyArray<[string, number]> = [
  ['kernel.shm_rmid_forced', 0],
  ['net.ipv4.ip_local_port_range', 0],
  ['net.ipv4.ip_unprivileged_port_start', 0],
  ['net.ipv4.tcp_syncookies', 0],
  ['net.ipv4.ping_group_range', 0],
  ['net.ipv4.ip_local_reserved_ports', 27],
  ['net.ipv4.tcp_keepalive_time', 29],
  ['net.ipv4.tcp_fin_timeout', 29],
  ['net.ipv4.tcp_keepalive_intvl', 29],
  ['net.ipv4.tcp_keepalive_probes', 29],
  ['net.ipv4.tcp_rmem', 32],
  ['net.ipv4.tcp_wmem', 32],
  ['net.ipv4.tcp_slow_start_after_idle', 35],
  ['net.ipv4.tcp_notsent_lowat', 35],
];

/** SELinux types a container may ask for (with the minor version that first allows each). */
const SELINUX_TYPES: ReadonlyArray<[string, number]> = [
  ['container_t', 0],
  ['container_init_t', 0],
  ['container_kvm_t', 0],
  ['container_engine_t', 31],
];

/** Pod Security refuses `host` in probes and lifecycle handlers from this minor version on. */
const HOST_PROBES_SINCE = 34;

const APPARMOR_ANNOTATION_PREFIX = 'container.apparmor.security.beta.kubernetes.io/';

type Container = {
  name: string;
  securityContext?: SecurityContext;
  ports?: Array<{ hostPort?: number }>;
  [probe: string]: unknown;
};

/** "v1.30" -> 30; "latest" -> every rule. */
function minorOf(version: string): number {
  if (version === 'latest') return Number.MAX_SAFE_INTEGER;
  const m = /^v1\.(\d+)$/.exec(version);
  if (!m) throw new Error(`Pod Security version "${version}" is not of the form "v1.30" (or "latest")`);
  return Number(m[1]);
}

/**
 * Pod Security Standards, "restricted" profile (which includes "baseline"), as the
 * PodSecurity admission plugin of `version` applies it; checked against Kubernetes' own
 * pass/fail fixtures (test/policy/psa-conformance.test.ts). Windows pods skip the
 * Linux-only controls (privilege escalation, capabilities drop, seccomp), as the plugin does.
 */
export function checkPodSecurityRestricted(o: KubeObject, version: string = POD_SECURITY_VERSION): string[] {
  const template = podTemplateOf(o);
  if (!template?.spec) return [];
  const minor = minorOf(version);
  const pod = template.spec;
  const where = describe(o);
  const problems: string[] = [];
  const podSc = pod.securityContext ?? {};
  const windows = pod.os?.name === 'windows';
  for (const field of ['hostNetwork', 'hostPID', 'hostIPC'] as const) {
    if (pod[field]) problems.push(`${where}: ${field} must not be true (Pod Security "restricted")`);
  }
  for (const volume of pod.volumes ?? []) {
    const type = Object.keys(volume).find((k) => k !== 'name');
    if (type && !RESTRICTED_VOLUME_TYPES.has(type)) {
      problems.push(`${where}: volume "${volume.name}" is of type ${type}; Pod Security "restricted" allows only ${[...RESTRICTED_VOLUME_TYPES].join(', ')}`);
    }
  }
  if (podSc.runAsUser === 0) problems.push(`${where}: securityContext.runAsUser must not be 0 (root)`);
  if (podSc.windowsOptions?.hostProcess) problems.push(`${where}: securityContext.windowsOptions.hostProcess must not be true`);
  if (podSc.seccompProfile?.type === 'Unconfined') problems.push(`${where}: securityContext.seccompProfile.type must not be Unconfined`);
  problems.push(...checkAppArmor(podSc.appArmorProfile, `${where}: securityContext`));
  problems.push(...checkSeLinux(podSc.seLinuxOptions, `${where}: securityContext`, minor));
  for (const sysctl of podSc.sysctls ?? []) {
    if (!SAFE_SYSCTLS.some(([name, since]) => name === sysctl.name && minor >= since)) {
      problems.push(`${where}: securityContext.sysctls "${sysctl.name}" is not a safe sysctl in Pod Security ${version}; remove it`);
    }
  }
  for (const [key, value] of Object.entries(template.metadata?.annotations ?? {})) {
    if (key.startsWith(APPARMOR_ANNOTATION_PREFIX) && value !== '' && value !== 'runtime/default' && !value.startsWith('localhost/')) {
      problems.push(`${where}: annotation ${key}: "${value}" must be "runtime/default" or "localhost/<profile>"`);
    }
  }
  const containers = [...(pod.initContainers ?? []), ...pod.containers, ...(pod.ephemeralContainers ?? [])] as Container[];
  for (const c of containers) {
    const at = `${where}: container "${c.name}"`;
    const sc = c.securityContext ?? {};
    if (sc.privileged) problems.push(`${at}: securityContext.privileged must not be true`);
    if (sc.windowsOptions?.hostProcess) problems.push(`${at}: securityContext.windowsOptions.hostProcess must not be true`);
    if (sc.procMount !== undefined && sc.procMount !== 'Default') problems.push(`${at}: securityContext.procMount must be Default`);
    problems.push(...checkAppArmor(sc.appArmorProfile, `${at}: securityContext`));
    problems.push(...checkSeLinux(sc.seLinuxOptions, `${at}: securityContext`, minor));
    const added = sc.capabilities?.add ?? [];
    const notBaseline = added.filter((cap) => !BASELINE_CAPABILITIES.has(cap));
    if (windows && notBaseline.length) problems.push(`${at}: securityContext.capabilities.add may not hold ${notBaseline.join(', ')}`);
    if (!windows) {
      if (sc.allowPrivilegeEscalation !== false) problems.push(`${at}: securityContext.allowPrivilegeEscalation must be false`);
      if (!(sc.capabilities?.drop ?? []).includes('ALL')) problems.push(`${at}: securityContext.capabilities.drop must include "ALL"`);
      const extra = added.filter((cap) => cap !== 'NET_BIND_SERVICE');
      if (extra.length) problems.push(`${at}: securityContext.capabilities.add may only hold NET_BIND_SERVICE, found ${extra.join(', ')}`);
      const seccomp = sc.seccompProfile?.type ?? podSc.seccompProfile?.type;
      if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') problems.push(`${at}: seccompProfile.type must be RuntimeDefault or Localhost`);
    } else if (sc.seccompProfile?.type === 'Unconfined') {
      problems.push(`${at}: securityContext.seccompProfile.type must not be Unconfined`);
    }
    const runAsNonRoot = sc.runAsNonRoot ?? podSc.runAsNonRoot;
    if (runAsNonRoot !== true) problems.push(`${at}: runAsNonRoot must be true (in the pod or container securityContext)`);
    if (sc.runAsUser === 0) problems.push(`${at}: securityContext.runAsUser must not be 0 (root)`);
    if ((c.ports ?? []).some((p) => p.hostPort)) problems.push(`${at}: hostPort must not be set`);
    if (minor >= HOST_PROBES_SINCE) {
      for (const field of hostHandlerFields(c)) problems.push(`${at}: ${field} must not be set (the kubelet would probe another host)`);
    }
  }
  return problems;
}

function checkAppArmor(profile: { type?: string } | undefined, at: string): string[] {
  if (!profile || profile.type === 'RuntimeDefault' || profile.type === 'Localhost') return [];
  return [`${at}.appArmorProfile.type must be RuntimeDefault or Localhost, not ${profile.type}`];
}

function checkSeLinux(options: { type?: string; user?: string; role?: string } | undefined, at: string, minor: number): string[] {
  if (!options) return [];
  const problems: string[] = [];
  if (options.type && !SELINUX_TYPES.some(([type, since]) => type === options.type && minor >= since)) {
    problems.push(`${at}.seLinuxOptions.type "${options.type}" is not allowed; use ${SELINUX_TYPES.filter(([, since]) => minor >= since).map(([t]) => t).join(', ')} or leave it unset`);
  }
  if (options.user) problems.push(`${at}.seLinuxOptions.user must not be set`);
  if (options.role) problems.push(`${at}.seLinuxOptions.role must not be set`);
  return problems;
}

/** Probe and lifecycle handler fields that name a host (httpGet.host, tcpSocket.host). */
function hostHandlerFields(c: Container): string[] {
  const handlers: Array<[string, any]> = [
    ...['livenessProbe', 'readinessProbe', 'startupProbe'].map((f): [string, any] => [f, c[f]]),
    ...['postStart', 'preStop'].map((f): [string, any] => [`lifecycle.${f}`, (c.lifecycle as any)?.[f]]),
  ];
  return handlers.flatMap(([field, handler]) =>
    ['httpGet', 'tcpSocket'].filter((kind) => handler?.[kind]?.host).map((kind) => `${field}.${kind}.host`),
  );
}

/** No "*" in verbs, resources, apiGroups or resourceNames: every grant is named. */
export function checkRbacNoWildcards(o: KubeObject): string[] {
  if (o.kind !== 'Role' && o.kind !== 'ClusterRole') return [];
  const rules = (o.rules ?? []) as Array<Record<string, string[] | undefined>>;
  return rules.flatMap((rule, i) =>
    ['apiGroups', 'resources', 'verbs', 'resourceNames', 'nonResourceURLs']
      .filter((field) => (rule[field] ?? []).some((v) => v.includes('*')))
      .map((field) => `${describe(o)}: rules[${i}].${field} uses a wildcard; list what is needed by name`),
  );
}

/** ConfigMaps are readable by anyone with `get configmaps` and land in dist/ in plain text. */
export function checkNoSecretsInConfigMap(o: KubeObject, secretValues: readonly string[]): string[] {
  if (o.kind !== 'ConfigMap') return [];
  const data = { ...((o.data as Record<string, string>) ?? {}), ...((o.binaryData as Record<string, string>) ?? {}) };
  const problems: string[] = [];
  for (const [key, value] of Object.entries(data)) {
    if (secretValues.some((secret) => secret.length >= 4 && value.includes(secret))) {
      problems.push(`${describe(o)}: key "${key}" contains the value of a credential; reference the Secret with CredentialSecret.grantTo(pool) instead`);
      continue;
    }
    const match = SECRET_PATTERNS.find(([, pattern]) => pattern.test(value));
    if (match) {
      problems.push(`${describe(o)}: key "${key}" contains what looks like ${match[0]}; keep credentials in a Secret and grant them with CredentialSecret.grantTo(pool)`);
    }
  }
  return problems;
}

/**
 * The agent reads everything its container has: agent containers (containers of pods
 * labelled as running agent code; the fetch init container runs none) reference no
 * Secret, in env, envFrom or a volume, unless the pool granted it with exposeToAgent
 * (listed in the pod's paddock.dev/agent-secrets annotation).
 */
export function checkNoSecretsForAgents(o: KubeObject, agentLabel: string, exposedAnnotation = 'paddock.dev/agent-secrets'): string[] {
  const template = podTemplateOf(o);
  if (!template?.spec || template.metadata?.labels?.[agentLabel] !== 'true') return [];
  const exposed = new Set((template.metadata?.annotations?.[exposedAnnotation] ?? '').split(',').filter(Boolean));
  const volumes = new Map((template.spec.volumes ?? []).map((v) => [v.name, v]));
  const problems: string[] = [];
  for (const c of template.spec.containers) {
    const refs: Array<[string, string]> = [];
    for (const e of c.env ?? []) if (e.valueFrom?.secretKeyRef?.name) refs.push([e.valueFrom.secretKeyRef.name, `env ${e.name}`]);
    for (const e of c.envFrom ?? []) if (e.secretRef?.name) refs.push([e.secretRef.name, 'envFrom']);
    for (const m of c.volumeMounts ?? []) {
      const v = volumes.get(m.name);
      if (v?.secret?.secretName) refs.push([v.secret.secretName, `volume "${m.name}"`]);
      for (const src of v?.projected?.sources ?? []) if (src.secret?.name) refs.push([src.secret.name, `volume "${m.name}"`]);
    }
    for (const [secret, how] of refs) {
      if (exposed.has(secret)) continue;
      problems.push(
        `${describe(o)}: container "${c.name}" references Secret "${secret}" (${how}), which the agent could read; ` +
          'grant model keys without exposeToAgent (the model gateway holds them) and git credentials with { git } (the fetch step holds them), or grant it with exposeToAgent: true',
      );
    }
  }
  return problems;
}

/** Every agent pod must be selected by a NetworkPolicy that denies all ingress and egress not explicitly allowed. */
export function checkAgentPodsDenyByDefault(objects: readonly KubeObject[], agentLabel: string): string[] {
  const denyAll = objects.filter(
    (o) =>
      o.kind === 'NetworkPolicy' &&
      ((o.spec as any)?.policyTypes ?? []).includes('Ingress') &&
      ((o.spec as any)?.policyTypes ?? []).includes('Egress') &&
      ((o.spec as any)?.ingress ?? []).length === 0 &&
      ((o.spec as any)?.egress ?? []).length === 0,
  );
  const problems: string[] = [];
  for (const o of objects) {
    const labels = podTemplateOf(o)?.metadata?.labels ?? {};
    if (labels[agentLabel] !== 'true') continue;
    const namespace = o.metadata?.namespace;
    const covered = denyAll.some((np) => np.metadata?.namespace === namespace && selects((np.spec as any).podSelector, labels));
    if (!covered) {
      problems.push(`${describe(o)}: its agent pods are not selected by a default-deny NetworkPolicy (ingress and egress) in namespace "${namespace}"; keep the Platform's default-deny policy`);
    }
  }
  return problems;
}

/** Kubernetes label-selector semantics. */
export function selects(selector: LabelSelector | undefined, labels: Record<string, string>): boolean {
  if (!selector) return false;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false;
  }
  for (const expr of selector.matchExpressions ?? []) {
    const has = expr.key in labels;
    const values = expr.values ?? [];
    switch (expr.operator) {
      case 'In':
        if (!has || !values.includes(labels[expr.key])) return false;
        break;
      case 'NotIn':
        if (has && values.includes(labels[expr.key])) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}
