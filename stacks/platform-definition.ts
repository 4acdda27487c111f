/**
 * A whole platform as plain data, built into constructs by `buildPlatform`.
 * Both deployers start here: stacks/cdk8s/main.ts (cdk8s synth) and the
 * Pulumi AgentPlatform component, so they produce the same objects.
 */
import { Duration } from 'cdk8s';
import { Construct } from 'constructs';
import {
  AgentPool,
  AgentTask,
  CredentialGrant,
  CredentialSecret,
  EgressAllowlist,
  EgressBackend,
  EgressProxyOptions,
  EgressRule,
  GitSource,
  Harness,
  HarnessPresetOptions,
  ImageOptions,
  Platform,
  PlatformProps,
  PodResources,
  SandboxProfile,
  SandboxProfileOptions,
} from '../constructs';
import { fail } from '../core/validation';
import type { ConfigFileSpec, HarnessSpec } from '../policy/specs';

export interface HarnessDefinition extends HarnessPresetOptions {
  /** codex, claude-code, gemini-cli, opencode or copilot. */
  readonly preset: string;
}

/** A custom harness as data: its spec (policy/schemas/harness.schema.json), as `Harness.fromSpec` takes it. */
export interface CustomHarnessDefinition {
  readonly spec: HarnessSpec;
}

export type SandboxDefinition =
  | { readonly type: 'gvisor' | 'kata'; readonly options?: SandboxProfileOptions }
  | { readonly type: 'none' }
  | { readonly type: 'custom'; readonly handler: string; readonly options?: SandboxProfileOptions };

export interface PoolDefinition {
  readonly name: string;
  /** Preset names, preset options, or custom harnesses as data ({ spec: HarnessSpec }). */
  readonly harnesses: Array<string | HarnessDefinition | CustomHarnessDefinition>;
  readonly replicas?: number;
  /** "job" (one Job per task) or "warm" (worker Deployment leases tasks). @default "job" */
  readonly mode?: 'job' | 'warm';
  /** Runs of the pool at once. @default 10 */
  readonly concurrency?: number;
  /** @default { type: "gvisor" } */
  readonly sandbox?: SandboxDefinition;
  readonly resources?: PodResources;
  readonly nodeSelector?: Record<string, string>;
  readonly env?: Record<string, string>;
  /** Names of egress allowlists the pool may use. */
  readonly egress?: string[];
}

export interface CredentialDefinition {
  /** Name of the Secret in the platform namespace. */
  readonly secretName: string;
  readonly keys: string[];
  /** Pool name → what it gets (default: every key as an env var). */
  readonly grants: Record<string, CredentialGrant>;
}

export interface AllowlistDefinition {
  readonly name: string;
  readonly rules: EgressRule[];
  /** How the allowlist is enforced. @default "proxy" */
  readonly backend?: EgressBackend;
  /** Settings of the egress proxy (backend "proxy" only). @default - one replica, port 3128 */
  readonly proxy?: EgressProxyOptions;
}

export interface TaskDefinition {
  readonly name: string;
  readonly pool: string;
  readonly harness?: string;
  readonly model?: string;
  readonly prompt: string;
  readonly sources?: GitSource[];
  readonly timeoutMinutes?: number;
  readonly env?: Record<string, string>;
  /** Extra attempts after an agent failure. @default 0 */
  readonly retries?: number;
  /** Config files (task layer). @default - none */
  readonly config?: ConfigFileSpec[];
  /** The agent's working directory, relative to /workspace. @default - the only source's directory, else /workspace */
  readonly workdir?: string;
  /** Synthesize the task's Job. @default - true for a "job" pool, false for a "warm" pool */
  readonly createJob?: boolean;
}

export interface PlatformDefinition {
  readonly namespace?: string;
  readonly imageOptions?: ImageOptions;
  readonly controller?: PlatformProps['controller'];
  readonly apiServer?: PlatformProps['apiServer'];
  readonly egress?: AllowlistDefinition[];
  readonly credentials?: CredentialDefinition[];
  readonly pools: PoolDefinition[];
  readonly tasks?: TaskDefinition[];
}

/**
 * Build the constructs of a platform definition under `scope`. `extend` runs once the
 * pools exist and before the credentials and tasks, so those may name pools it adds.
 */
export function buildPlatform(scope: Construct, id: string, def: PlatformDefinition, extend?: (platform: Platform) => void): Platform {
  const platform = new Platform(scope, id, {
    namespace: def.namespace,
    imageOptions: def.imageOptions,
    controller: def.controller,
    apiServer: def.apiServer,
  });
  const allowlists = new Map((def.egress ?? []).map((a) => [a.name, new EgressAllowlist(platform, `egress-${a.name}`, { name: a.name, rules: a.rules, backend: a.backend, proxy: a.proxy })]));
  const pools = new Map<string, AgentPool>();
  for (const p of def.pools ?? []) {
    const pool = new AgentPool(platform, `pool-${p.name}`, {
      name: p.name,
      harnesses: p.harnesses.map((h) =>
        typeof h === 'string'
          ? Harness.fromPreset(h, { imageOptions: def.imageOptions })
          : 'spec' in h
            ? Harness.fromSpec(h.spec)
            : Harness.fromPreset(h.preset, { imageOptions: def.imageOptions, ...h }),
      ),
      replicas: p.replicas,
      mode: p.mode,
      concurrency: p.concurrency,
      sandbox: sandboxOf(p.sandbox),
      resources: p.resources,
      nodeSelector: p.nodeSelector,
      env: p.env,
    });
    for (const name of p.egress ?? []) {
      const allowlist = allowlists.get(name);
      if (!allowlist) fail(`pool "${p.name}": egress names allowlist "${name}", which is not defined; defined: ${[...allowlists.keys()].join(', ') || 'none'}`);
      pool.allowEgressTo(allowlist);
    }
    pools.set(p.name, pool);
  }
  extend?.(platform);
  for (const c of def.credentials ?? []) {
    const credential = CredentialSecret.fromSecretName(platform, `credential-${c.secretName}`, c.secretName, c.keys);
    for (const [poolName, grant] of Object.entries(c.grants)) {
      // Pools of the definition, or added by `extend`.
      const pool = pools.get(poolName) ?? platform._findPool(poolName);
      if (!(pool instanceof AgentPool)) fail(`credential "${c.secretName}": grants name pool "${poolName}", which is not defined; defined: ${platform.poolNames.join(', ')}`);
      credential.grantTo(pool, grant);
    }
  }
  for (const t of def.tasks ?? []) {
    new AgentTask(platform, `task-${t.name}`, {
      name: t.name,
      pool: t.pool,
      harness: t.harness,
      model: t.model,
      prompt: t.prompt,
      sources: t.sources,
      timeout: t.timeoutMinutes !== undefined ? Duration.minutes(t.timeoutMinutes) : undefined,
      env: t.env,
      retries: t.retries,
      config: t.config,
      workdir: t.workdir,
      createJob: t.createJob,
    });
  }
  return platform;
}

function sandboxOf(def: SandboxDefinition | undefined): SandboxProfile {
  switch (def?.type ?? 'gvisor') {
    case 'gvisor':
      return SandboxProfile.gvisor((def as { options?: SandboxProfileOptions })?.options);
    case 'kata':
      return SandboxProfile.kata((def as { options?: SandboxProfileOptions }).options);
    case 'none':
      return SandboxProfile.none();
    case 'custom': {
      const custom = def as { handler: string; options?: SandboxProfileOptions };
      return SandboxProfile.custom({ ...custom.options, handler: custom.handler });
    }
    default:
      return fail(`sandbox type "${(def as { type: string }).type}" is unknown; use gvisor, kata, none or custom`);
  }
}
