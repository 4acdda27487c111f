/**
 * The one contract between synthesis and execution: the JSON Schemas in
 * policy/schemas/. Constructs validate what they synthesize with these
 * functions; the runner validates what it reads with the very same ones.
 */
import type Ajv from 'ajv';
import type { ErrorObject, Options, ValidateFunction } from 'ajv';
import * as fs from 'fs';
import * as path from 'path';
import * as commonSchema from './schemas/common.schema.json';
import * as harnessSchema from './schemas/harness.schema.json';
import * as poolSchema from './schemas/pool.schema.json';
import * as taskSchema from './schemas/task.schema.json';

export type SpecKind = 'Task' | 'Harness' | 'Pool';

export interface ConfigFileSpec {
  readonly path: string;
  readonly base?: 'home' | 'workdir';
  readonly format?: 'json' | 'toml' | 'text';
  readonly content: string;
}

export interface ConfigLayerSpec {
  readonly files?: ConfigFileSpec[];
}

export interface GitSourceSpec {
  readonly name: string;
  readonly type: 'git_https';
  readonly url: string;
  readonly branch?: string;
  readonly ref?: string;
  readonly depth?: number;
  readonly subPath?: string;
}

/** What the agent may do; harness < pool < task, the task wins and a deny always wins. */
export interface AgentPolicySpec {
  /** Only these tools are offered (the nearest layer that sets it wins). */
  readonly allowedTools?: string[];
  /** Never offered (every layer's list counts). */
  readonly deniedTools?: string[];
  /** false: the shell tool is off (false in any layer wins). */
  readonly shell?: boolean;
  readonly maxTurns?: number;
  readonly appendSystemPrompt?: string;
}

export type PolicyItem = keyof AgentPolicySpec;

/** One way a harness enforces a policy item (exactly one field). */
export interface PolicyStepSpec {
  readonly argv?: string[];
  readonly config?: {
    readonly path: string;
    readonly base?: 'home' | 'workdir';
    readonly format: 'json' | 'toml';
    readonly key: string[];
    readonly value?: unknown;
    readonly each?: unknown;
    readonly over?: Record<string, unknown>;
    /** The key is set whole: lower config layers' values under it are dropped. */
    readonly replace?: boolean;
  };
  readonly file?: { readonly path: string; readonly base?: 'home' | 'workdir' };
  readonly denyTools?: string[];
}

export type PolicyEnforcementSpec = PolicyStepSpec[] | { readonly unsupported: string };

export interface SessionRefSpec {
  readonly name: string;
  /** Start the session if it does not exist. @default false */
  readonly create?: boolean;
  /** Fresh checkout instead of the previous run's change. @default false */
  readonly freshWorkspace?: boolean;
}

export interface TaskSpec {
  readonly apiVersion: 'paddock.dev/v1alpha1';
  readonly kind: 'Task';
  readonly name: string;
  readonly pool: string;
  readonly harness: string;
  readonly model?: string;
  readonly prompt: string;
  readonly sources?: GitSourceSpec[];
  readonly workdir?: string;
  readonly timeoutSeconds?: number;
  readonly env?: Record<string, string>;
  readonly config?: ConfigLayerSpec;
  readonly policy?: AgentPolicySpec;
  /** Extra attempts after an agent failure or timeout (infrastructure failures are retried regardless). @default 0 */
  readonly retries?: number;
  /** The session this task continues (one task of a session at a time, in submission order). */
  readonly session?: SessionRefSpec;
  /** Queue order within the pool, 0-1000: higher first, then older first. @default 500 */
  readonly priority?: number;
  /** Push the change to a branch (and open a pull/merge request). @default - the change is only recorded */
  readonly delivery?: DeliverySpec;
}

export interface DeliverySpec {
  readonly source?: string;
  readonly branch: string;
  readonly repository?: string;
  readonly commitMessage?: string;
  readonly author?: { readonly name: string; readonly email: string };
  readonly pullRequest?: { readonly title: string; readonly body?: string; readonly base?: string; readonly draft?: boolean };
  readonly onAgentFailure?: boolean;
}

export type Forge = 'github' | 'gitlab';

export interface PushCredentialSpec {
  readonly host: string;
  readonly secret: string;
  readonly key: string;
  readonly username?: string;
  readonly forge?: Forge;
  readonly api?: string;
}

export type PromptVia = 'argv' | 'file' | 'stdin';

export interface ResultsSpec {
  readonly from: 'stdout' | 'json-field' | 'file';
  readonly field?: string;
  readonly path?: string;
}

export interface HarnessSpec {
  readonly apiVersion: 'paddock.dev/v1alpha1';
  readonly kind: 'Harness';
  readonly name: string;
  readonly capability: string;
  readonly image?: string;
  readonly command: string[];
  readonly promptVia: PromptVia;
  readonly defaultModel?: string;
  readonly env?: Record<string, string>;
  readonly config?: ConfigLayerSpec;
  /** The harness's default policy. */
  readonly policy?: AgentPolicySpec;
  /** How its CLI enforces each policy item; an item without one is refused. */
  readonly policyMapping?: Partial<Record<PolicyItem, PolicyEnforcementSpec>>;
  readonly results: ResultsSpec;
  /** Retries the model gateway lets through for a CLI with no retry setting (it then answers 424, final). */
  readonly gatewayMaxRetries?: number;
  readonly hosts?: string[];
  readonly credentialEnv?: string[];
  /** How its CLI continues a session's conversation (core/resume.ts); absent: from a transcript. */
  readonly resume?: ResumeSpec;
}

/**
 * How a CLI continues a session's conversation. Native: `argv` is added (before the prompt's
 * elements) when the session holds the CLI's state from an earlier run, `start` on its first
 * run; `state` names the HOME-relative files that hold the conversation, saved after a run and
 * restored before the next. `{session_id}` in any of them is the session's conversation id.
 * Unsupported: the earlier turns reach the CLI as a transcript in the prompt, and this says why.
 */
export type ResumeSpec =
  | { readonly start?: string[]; readonly argv: string[]; readonly state: string[] }
  | { readonly unsupported: string };

export interface CredentialEnvSpec {
  readonly name: string;
  readonly secret?: string;
  readonly key?: string;
}

export interface CredentialFileSpec {
  readonly path: string;
  readonly source: string;
  readonly secret?: string;
  readonly key?: string;
}

export interface GitCredentialSpec {
  readonly host: string;
  readonly username?: string;
  readonly passwordFile: string;
  readonly secret?: string;
  readonly key?: string;
}

export interface PoolSpec {
  readonly apiVersion: 'paddock.dev/v1alpha1';
  readonly kind: 'Pool';
  readonly name: string;
  readonly capabilities: string[];
  readonly harnesses: string[];
  /** "job": one Job per task; "warm": the worker Deployment leases tasks. @default "job" */
  readonly mode?: 'job' | 'warm';
  /** Runs of the pool at once; more wait in the queue. @default 10 */
  readonly concurrency?: number;
  readonly env?: Record<string, string>;
  readonly config?: ConfigLayerSpec;
  readonly policy?: AgentPolicySpec;
  readonly credentials?: {
    readonly env?: CredentialEnvSpec[];
    readonly files?: CredentialFileSpec[];
    readonly git?: GitCredentialSpec[];
  };
  /** Push credentials for delivery; only the publish step mounts them. */
  readonly push?: PushCredentialSpec[];
  readonly egress?: {
    readonly proxy?: string;
    readonly noProxy?: string[];
  };
  /** The model gateway holding this pool's model keys; the agent gets the pool's gateway token in their place. */
  readonly gateway?: {
    readonly url: string;
    readonly tokenFile: string;
    readonly credentials: Array<{ readonly env: string; readonly provider: string }>;
  };
}

export const SPEC_API_VERSION = 'paddock.dev/v1alpha1';

export const SCHEMA_IDS: Record<SpecKind, string> = {
  Task: taskSchema.$id,
  Harness: harnessSchema.$id,
  Pool: poolSchema.$id,
};

/** allErrors so one run reports every bad field, not just the first. */
export const AJV_OPTIONS: Options = { allErrors: true, strict: true, strictRequired: false };

/** Written next to this module by `npm run build` (policy/build-validators.ts). */
const GENERATED = path.join(__dirname, 'spec-validators.js');

let validators: Record<SpecKind, ValidateFunction> | undefined;

function validatorFor(kind: SpecKind): ValidateFunction {
  if (!validators) {
    // The built package uses validators generated from the schemas at build time, so the
    // runner starts without requiring ajv or compiling schemas; from source, compile them.
    validators = fs.existsSync(GENERATED) ? require(GENERATED) : compileValidators();
  }
  return validators![kind];
}

/** An ajv instance holding every spec schema. */
export function newSpecAjv(options: Options = {}): Ajv {
  const AjvClass: typeof Ajv = require('ajv').default;
  const ajv = new AjvClass({ ...AJV_OPTIONS, ...options });
  for (const schema of [commonSchema, taskSchema, harnessSchema, poolSchema]) {
    ajv.addSchema(strip(schema));
  }
  return ajv;
}

function compileValidators(): Record<SpecKind, ValidateFunction> {
  const ajv = newSpecAjv();
  const compiled = {} as Record<SpecKind, ValidateFunction>;
  for (const kind of Object.keys(SCHEMA_IDS) as SpecKind[]) {
    const validate = ajv.getSchema(SCHEMA_IDS[kind]);
    if (!validate) throw new Error(`no schema registered for ${kind}`);
    compiled[kind] = validate;
  }
  return compiled;
}

/** JSON modules imported with esModuleInterop carry a `default` key that is not part of the schema. */
function strip(schema: object): object {
  const { default: _ignored, ...rest } = schema as Record<string, unknown>;
  return rest;
}

/** Validate a spec; returns one message per problem, each naming the field (empty when valid). */
export function validateSpec(kind: SpecKind, spec: unknown): string[] {
  const validate = validatorFor(kind);
  if (validate(spec)) {
    return [];
  }
  return dedupe((validate.errors ?? []).map((e) => describeError(kind, e)));
}

/** Throw one error listing every problem when the spec is invalid. */
export function assertValidSpec(kind: SpecKind, spec: unknown, where: string): void {
  const errors = validateSpec(kind, spec);
  if (errors.length > 0) {
    throw new SpecError(`${where}: invalid ${kind} spec:\n  - ${errors.join('\n  - ')}`, errors);
  }
}

export class SpecError extends Error {
  constructor(message: string, public readonly problems: string[]) {
    super(message);
    this.name = 'SpecError';
  }
}

/** The pattern of common.schema.json#/definitions/noNulString. */
const NO_NUL_PATTERN = '^[^\\u0000]*$';

function describeError(kind: SpecKind, e: ErrorObject): string {
  const field = jsonPointerToField(e.instancePath) || '(root)';
  switch (e.keyword) {
    case 'additionalProperties':
      return `${joinField(field, String(e.params.additionalProperty))}: unknown field; remove it or check its spelling against the ${kind} schema`;
    case 'required':
      return `${joinField(field, String(e.params.missingProperty))}: is required`;
    case 'enum':
      return `${field}: must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'const':
      return `${field}: must be ${JSON.stringify(e.params.allowedValue)}`;
    case 'not':
      return `${field}: give either branch or ref, not both`;
    case 'pattern':
      if (e.params.pattern === NO_NUL_PATTERN) return `${field}: contains a NUL byte, which no process argument or environment variable can hold; remove it`;
      if (/^\/sources\/\d+\/url$/.test(e.instancePath)) {
        return `${field}: must be an https:// URL of the repository without credentials, e.g. "https://github.com/org/repo.git"; http:// is refused (readable and changeable in transit): use https://`;
      }
      if (/\/config\/files\/\d+\/path$/.test(e.instancePath)) {
        return `${field}: must name a file relative to its base, with no empty or "." segment, e.g. ".codex/config.toml"`;
      }
      return `${field}: ${e.message}`;
    case 'maxLength':
      if (field === 'prompt') return `${field}: ${e.message}; put long instructions into a file of the repository and point the prompt at it`;
      return `${field}: ${e.message}`;
    case 'propertyNames':
      return `${field}: has an invalid key; environment variable names are letters, digits and '_', not starting with a digit`;
    default:
      return `${field}: ${e.message}`;
  }
}

function joinField(base: string, key: string): string {
  return base === '(root)' ? key : `${base}.${key}`;
}

/** /sources/0/url -> sources[0].url */
function jsonPointerToField(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, part) => (/^\d+$/.test(part) ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part), '');
}

function dedupe(list: string[]): string[] {
  return [...new Set(list)];
}
