import type { Toleration } from 'kubernetes-types/core/v1';
import { checkDnsLabel, checkInteger, checkLabels, checkQuantity, fail } from '../core/validation';

export interface ResourceSpec {
  readonly cpu?: string;
  readonly memory?: string;
  readonly 'ephemeral-storage'?: string;
}

export interface PodResources {
  readonly requests?: ResourceSpec;
  readonly limits?: ResourceSpec;
}

export interface SandboxProfileOptions {
  /**
   * Create the RuntimeClass. Set false to use one a cluster admin owns (GKE Sandbox, an operator, ...).
   * @default true
   */
  readonly createRuntimeClass?: boolean;
  /** @default - the profile's own: "gvisor", "kata", or `handler` for custom */
  readonly runtimeClassName?: string;
  /** RuntimeClass overhead added to each pod's requests. @default - gvisor: 100m/64Mi, kata: 250m/160Mi, custom: none */
  readonly overhead?: ResourceSpec;
  /** RuntimeClass scheduling: only nodes with these labels run sandboxed pods. @default - any node */
  readonly nodeSelector?: Record<string, string>;
  /** RuntimeClass scheduling tolerations (e.g. for a tainted sandbox node pool). @default - none */
  readonly tolerations?: Toleration[];
  /** uid (and gid) every agent container runs as. @default 10001 */
  readonly uid?: number;
  /** Size limit of the /tmp emptyDir. @default "1Gi" */
  readonly tmpSizeLimit?: string;
  /** Size limit of the HOME emptyDir. @default "1Gi" */
  readonly homeSizeLimit?: string;
  /** Size limit of the /workspace emptyDir. @default "10Gi" */
  readonly workspaceSizeLimit?: string;
  /** Agent container resources. @default - requests 500m CPU / 1Gi memory, limits 2 CPU / 4Gi memory */
  readonly resources?: PodResources;
}

export interface CustomSandboxOptions extends SandboxProfileOptions {
  /** The CRI handler name configured on the nodes, e.g. "kata-qemu" or "runsc". */
  readonly handler: string;
}

export type SandboxKind = 'none' | 'gvisor' | 'kata' | 'custom';

const DEFAULT_RESOURCES: PodResources = {
  requests: { cpu: '500m', memory: '1Gi' },
  limits: { cpu: '2', memory: '4Gi' },
};

/**
 * How agent pods are isolated: the container runtime (a RuntimeClass such as
 * gVisor or Kata) plus the hardened pod settings every agent pod gets.
 * `SandboxProfile.none()` is the named opt-out from a sandboxed runtime; the
 * hardened pod settings still apply.
 */
export class SandboxProfile {
  /** The cluster's default runtime (runc): pod hardening only, no kernel isolation. */
  public static none(options: Omit<SandboxProfileOptions, 'createRuntimeClass' | 'runtimeClassName' | 'overhead' | 'nodeSelector' | 'tolerations'> = {}): SandboxProfile {
    return new SandboxProfile('none', undefined, { ...options, createRuntimeClass: false });
  }

  /** gVisor (runsc): a user-space kernel between the agent and the host. */
  public static gvisor(options: SandboxProfileOptions = {}): SandboxProfile {
    return new SandboxProfile('gvisor', 'runsc', { overhead: { cpu: '100m', memory: '64Mi' }, ...options });
  }

  /** Kata Containers: each pod in a lightweight VM. */
  public static kata(options: SandboxProfileOptions = {}): SandboxProfile {
    return new SandboxProfile('kata', 'kata', { overhead: { cpu: '250m', memory: '160Mi' }, ...options });
  }

  /** Any other RuntimeClass handler configured on the nodes. */
  public static custom(options: CustomSandboxOptions): SandboxProfile {
    if (!options || typeof options.handler !== 'string' || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(options.handler)) {
      fail(`SandboxProfile.custom: handler "${options?.handler ?? ''}" is invalid; give the CRI handler configured on the nodes, e.g. { handler: "kata-qemu" }`);
    }
    return new SandboxProfile('custom', options.handler, options);
  }

  public readonly kind: SandboxKind;
  /** The CRI handler; undefined for none(). */
  public readonly handler?: string;
  /** runtimeClassName of agent pods; undefined for none(). */
  public readonly runtimeClassName?: string;
  public readonly createRuntimeClass: boolean;
  public readonly overhead?: ResourceSpec;
  public readonly nodeSelector?: Record<string, string>;
  public readonly tolerations?: Toleration[];
  public readonly uid: number;
  public readonly tmpSizeLimit: string;
  public readonly homeSizeLimit: string;
  public readonly workspaceSizeLimit: string;
  public readonly resources: PodResources;

  private constructor(kind: SandboxKind, handler: string | undefined, options: SandboxProfileOptions) {
    const where = `SandboxProfile.${kind}`;
    this.kind = kind;
    this.handler = handler;
    this.runtimeClassName = kind === 'none' ? undefined : checkDnsLabel(options.runtimeClassName ?? (kind === 'custom' ? handler : kind), `${where}: runtimeClassName`);
    this.createRuntimeClass = options.createRuntimeClass ?? true;
    this.overhead = options.overhead ? checkResources(options.overhead, `${where}: overhead`) : undefined;
    this.nodeSelector = options.nodeSelector === undefined ? undefined : checkLabels(options.nodeSelector, `${where}: nodeSelector`);
    this.tolerations = options.tolerations;
    this.uid = checkInteger(options.uid ?? 10001, `${where}: uid`, 1, 2147483647);
    this.tmpSizeLimit = checkQuantity(options.tmpSizeLimit ?? '1Gi', `${where}: tmpSizeLimit`);
    this.homeSizeLimit = checkQuantity(options.homeSizeLimit ?? '1Gi', `${where}: homeSizeLimit`);
    this.workspaceSizeLimit = checkQuantity(options.workspaceSizeLimit ?? '10Gi', `${where}: workspaceSizeLimit`);
    this.resources = checkPodResources(options.resources ?? DEFAULT_RESOURCES, `${where}: resources`);
  }
}

export function checkPodResources(resources: PodResources, field: string): PodResources {
  return {
    ...(resources.requests ? { requests: checkResources(resources.requests, `${field}.requests`) } : {}),
    ...(resources.limits ? { limits: checkResources(resources.limits, `${field}.limits`) } : {}),
  };
}

function checkResources(spec: ResourceSpec, field: string): ResourceSpec {
  for (const [name, value] of Object.entries(spec)) {
    if (!['cpu', 'memory', 'ephemeral-storage'].includes(name)) {
      fail(`${field}.${name}: unknown resource; use cpu, memory or ephemeral-storage`);
    }
    checkQuantity(value as string, `${field}.${name}`);
  }
  return { ...spec };
}
