import { ApiObject } from 'cdk8s';
import type * as kplus from 'cdk8s-plus-30';
import { Construct } from 'constructs';
import { kubeObject } from './kube-object';
import { standardLabels } from '../core/labels';
import { Platform } from './platform';
import { checkEnvName, fail } from '../core/validation';
import { MODEL_PROVIDERS } from '../core/model-providers';
import type { Forge, PushCredentialSpec } from '../policy/specs';

/** What a pool receives from a credential. */
export interface CredentialGrant {
  /** Environment variable → Secret key. @default - every key as an environment variable of the same name */
  readonly env?: Record<string, string>;
  /** File under the agent's HOME → Secret key, e.g. { ".codex/auth.json": "auth.json" }; written with mode 0400. @default - none */
  readonly files?: Record<string, string>;
  /** An HTTPS git credential: the key holding the token, for sources on `host`. Never reaches the agent. @default - none */
  readonly git?: { readonly host: string; readonly key: string; readonly username?: string };
  /**
   * Put the env and file grants in the agent's container, where the agent can read them.
   * The explicit opt-out for a CLI that cannot use the model gateway, or a file the agent
   * needs (e.g. `.codex/auth.json`); required for file grants.
   * @default false - model keys stay in the model gateway; the agent gets a placeholder
   */
  readonly exposeToAgent?: boolean;
}

/** A push credential for delivering changes (see `grantPushTo`). */
export interface PushGrant {
  /** The git host it pushes to, e.g. "github.com" (host[:port]). */
  readonly host: string;
  /** The Secret key holding the token. */
  readonly key: string;
  /** @default "x-access-token" */
  readonly username?: string;
  /** The forge's API flavour for pull/merge requests. @default "github" */
  readonly forge?: Forge;
  /** Base URL of the forge's REST API. @default - https://api.github.com for github.com, https://HOST/api/v3 for other GitHub hosts, https://HOST/api/v4 for GitLab */
  readonly api?: string;
}

/** Anything push credentials can be granted to (an AgentPool). */
export interface IPushGrantee {
  readonly name: string;
  /** @internal */
  _addPushCredential(grant: PushCredentialSpec): void;
}

/** @internal what a grant turns into on a pool */
export interface ResolvedGrant {
  readonly secretName: string;
  readonly env: Array<{ name: string; key: string }>;
  readonly files: Array<{ path: string; key: string }>;
  readonly git?: { host: string; key: string; username: string };
  /** The env and files are the agent's to read; otherwise env keys go to the model gateway. */
  readonly exposeToAgent: boolean;
}

/** Anything credentials can be granted to (an AgentPool). */
export interface ICredentialGrantee {
  readonly name: string;
  /** @internal */
  _addCredential(grant: ResolvedGrant): void;
}

export interface LiteralCredentialProps {
  /** Name of the Secret to create. */
  readonly secretName: string;
  /** Key → value. These values are written to the synthesized YAML in plain text. */
  readonly values: Record<string, string>;
  /**
   * Must be true: you accept that the values land in plain text in `dist/` (or your GitOps repo).
   * Prefer `fromSecretName` with a Secret created out of band or by external-secrets.
   */
  readonly allowPlaintextInManifests: boolean;
}

const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;

/**
 * Model and git credentials. By default a reference to a Secret that exists
 * in the platform namespace (created out of band, by external-secrets, or by
 * the Pulumi component from config secrets). A pool sees a credential only
 * after `credential.grantTo(pool)`, and then only the keys granted.
 */
export class CredentialSecret extends Construct {
  /** Reference an existing Secret and the keys it holds. */
  public static fromSecretName(scope: Construct, id: string, secretName: string, keys: string[]): CredentialSecret {
    return new CredentialSecret(scope, id, secretName, keys);
  }

  /**
   * A cdk8s-plus Secret (`kplus.Secret.fromSecretName(...)` or a `new kplus.Secret(...)`)
   * and the keys pools may use. A kplus Secret with values synthesizes them in plain
   * text: that needs `allowPlaintextInManifests: true`, as `fromLiteral` does.
   */
  public static fromSecret(scope: Construct, id: string, secret: kplus.ISecret, keys: string[], options: { readonly allowPlaintextInManifests?: boolean } = {}): CredentialSecret {
    const credential = new CredentialSecret(scope, id, secret?.name, keys);
    const apiObject = secret?.node?.findAll().find((c): c is ApiObject => c instanceof ApiObject);
    const namespace = apiObject?.metadata.namespace;
    if (namespace !== undefined && namespace !== credential.platform.namespace) {
      fail(`CredentialSecret "${id}": Secret "${secret.name}" is in namespace "${namespace}", but the platform's pods run in "${credential.platform.namespace}"; create it in the platform namespace`);
    }
    if (apiObject && options.allowPlaintextInManifests === true) credential.platform._registerLiteralSecret(apiObject);
    return credential;
  }

  /** Create a Secret from literal values; only with `allowPlaintextInManifests: true`. */
  public static fromLiteral(scope: Construct, id: string, props: LiteralCredentialProps): CredentialSecret {
    if (props?.allowPlaintextInManifests !== true) {
      fail(
        `CredentialSecret "${id}": literal values would be written in plain text to the synthesized manifests; ` +
          'reference an existing Secret with CredentialSecret.fromSecretName(scope, id, name, keys), ' +
          'or set allowPlaintextInManifests: true if you really mean it',
      );
    }
    const values = props.values ?? {};
    const credential = new CredentialSecret(scope, id, props.secretName, Object.keys(values));
    credential.platform._registerSecretValues(Object.values(values));
    const ns = credential.platform.namespace;
    const secret = kubeObject(credential, 'secret', {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: credential.secretName, namespace: ns, labels: standardLabels(ns, 'credentials') },
      type: 'Opaque',
      stringData: { ...values },
    });
    credential.platform._registerLiteralSecret(secret);
    return credential;
  }

  public readonly secretName: string;
  public readonly keys: readonly string[];
  private readonly platform: Platform;

  private constructor(scope: Construct, id: string, secretName: string, keys: string[]) {
    super(scope, id);
    this.platform = Platform.of(this);
    const where = `CredentialSecret "${id}"`;
    if (typeof secretName !== 'string' || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(secretName) || secretName.length > 253) {
      fail(`${where}: secret name "${secretName ?? ''}" is not a valid Secret name; use lower-case letters, digits, '-' and '.', e.g. "openai-api"`);
    }
    if (!Array.isArray(keys) || keys.length === 0) {
      fail(`${where}: list the Secret's keys the pools may use, e.g. ["OPENAI_API_KEY"]`);
    }
    keys.forEach((key, i) => {
      if (!SECRET_KEY.test(key)) fail(`${where}: keys[${i}] "${key}" is not a valid Secret key; use letters, digits, '-', '_' and '.'`);
    });
    this.secretName = secretName;
    this.keys = [...keys];
  }

  /**
   * Let the publish step deliver the changes of the pool's tasks to `host`: it
   * pushes with this token and opens pull/merge requests. No agent pod of the pool
   * ever mounts it; only the publish Job does (its own ServiceAccount and egress).
   */
  public grantPushTo(pool: IPushGrantee, grant: PushGrant): void {
    const where = `CredentialSecret "${this.node.id}".grantPushTo(${pool.name})`;
    if (!grant?.host || !/^[^/:@\s]+(:[0-9]+)?$/.test(grant.host)) fail(`${where}: host "${grant?.host ?? ''}" must be a bare hostname (optionally :port), e.g. "github.com"`);
    if (!this.keys.includes(grant.key)) fail(`${where}: key "${grant.key}" is not one of the Secret "${this.secretName}"'s declared keys: ${this.keys.join(', ')}`);
    if (grant.forge !== undefined && grant.forge !== 'github' && grant.forge !== 'gitlab') fail(`${where}: forge "${String(grant.forge)}" is unknown; write "github" or "gitlab"`);
    if (grant.api !== undefined && !/^https?:\/\/[^/@\s]+(\/\S*)?$/.test(grant.api)) fail(`${where}: api "${grant.api}" must be the forge's REST API URL, e.g. "https://gitlab.example.com/api/v4"`);
    pool._addPushCredential({
      host: grant.host,
      secret: this.secretName,
      key: grant.key,
      username: grant.username ?? 'x-access-token',
      forge: grant.forge ?? 'github',
      ...(grant.api ? { api: grant.api } : {}),
    });
  }

  /** Give a pool these credentials: as environment variables (default), files under HOME, or a git credential. */
  public grantTo(pool: ICredentialGrantee, grant: CredentialGrant = {}): void {
    const where = `CredentialSecret "${this.node.id}".grantTo(${pool.name})`;
    const checkKey = (key: string, field: string) => {
      if (!this.keys.includes(key)) {
        fail(`${where}: ${field} names key "${key}", which the Secret "${this.secretName}" was not declared with; declared keys: ${this.keys.join(', ')}`);
      }
      return key;
    };
    const useDefaultEnv = !grant.env && !grant.files && !grant.git;
    const envEntries = useDefaultEnv ? this.keys.map((k) => [k, k] as const) : Object.entries(grant.env ?? {});
    const env = envEntries.map(([name, key]) => {
      if (useDefaultEnv && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
        fail(`${where}: key "${key}" is not a valid environment variable name; map it explicitly, e.g. grantTo(pool, { env: { OPENAI_API_KEY: "${key}" } })`);
      }
      return { name: checkEnvName(name, `${where}: env.${name}`), key: checkKey(key, `env.${name}`) };
    });
    const exposeToAgent = grant.exposeToAgent === true;
    if (grant.files && !exposeToAgent) {
      fail(`${where}: files land in the agent's HOME, where the agent reads them; set exposeToAgent: true to accept that, e.g. grantTo(pool, { files: {...}, exposeToAgent: true })`);
    }
    if (!exposeToAgent) {
      for (const e of env) {
        if (!MODEL_PROVIDERS[e.name]) {
          fail(
            `${where}: env.${e.name} is no model key the gateway holds (it knows ${Object.keys(MODEL_PROVIDERS).join(', ')}); ` +
              `to give it to the agent as an environment variable, set exposeToAgent: true`,
          );
        }
      }
    }
    const files = Object.entries(grant.files ?? {}).map(([path, key]) => {
      if (!path || path.startsWith('/') || path.split('/').includes('..')) {
        fail(`${where}: files path "${path}" must be relative to the agent's HOME and stay inside it, e.g. ".codex/auth.json"`);
      }
      return { path, key: checkKey(key, `files["${path}"]`) };
    });
    let git: ResolvedGrant['git'];
    if (grant.git) {
      if (!grant.git.host || /[/:@\s]/.test(grant.git.host)) {
        fail(`${where}: git.host "${grant.git.host ?? ''}" must be a bare hostname, e.g. "github.com"`);
      }
      git = { host: grant.git.host, key: checkKey(grant.git.key, 'git.key'), username: grant.git.username ?? 'x-access-token' };
    }
    pool._addCredential({ secretName: this.secretName, env, files, git, exposeToAgent });
  }
}
