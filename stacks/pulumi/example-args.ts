/**
 * The example platform (stacks/example-platform.ts, the one `cdk8s synth` writes)
 * as AgentPlatform args, adjusted by `pulumi config`:
 *
 *   namespace        string    namespace of the platform            (default "paddock")
 *   pools            string[]  which example pools to deploy        (default ["codex", "claude"])
 *   imageRegistry    string    registry of Paddock's images         (default worker-images/images.json)
 *   imageTag         string    tag of Paddock's images              (default worker-images/images.json)
 *   exampleTasks     boolean   create the two example tasks' Jobs   (default true)
 *   openaiApiKey     secret    value of Secret openai-api    (OPENAI_API_KEY)
 *   anthropicApiKey  secret    value of Secret anthropic-api (ANTHROPIC_API_KEY)
 *
 * An API key left unset means its Secret is managed out of band, as with `cdk8s synth`.
 * With no config at all the platform is exactly the cdk8s example.
 */
import * as pulumi from '@pulumi/pulumi';
import { examplePlatform } from '../example-platform';
import type { PlatformDefinition } from '../platform-definition';
import type { AgentPlatformArgs, CredentialValues } from './agent-platform';

/** Config key of each example credential's value: key → [Secret name, Secret key]. */
export const EXAMPLE_CREDENTIAL_CONFIG: Readonly<Record<string, readonly [string, string]>> = {
  openaiApiKey: ['openai-api', 'OPENAI_API_KEY'],
  anthropicApiKey: ['anthropic-api', 'ANTHROPIC_API_KEY'],
};

export function examplePlatformArgs(config: pulumi.Config, base: PlatformDefinition = examplePlatform): AgentPlatformArgs {
  const known = base.pools.map((p) => p.name);
  const selected = config.getObject<unknown>('pools') ?? known;
  if (!Array.isArray(selected) || selected.length === 0 || selected.some((p) => typeof p !== 'string')) {
    throw new pulumi.RunError(`${config.name}:pools: must be a non-empty list of pool names, e.g. pulumi config set --path 'pools[0]' codex (pools: ${known.join(', ')})`);
  }
  const unknown = selected.filter((p) => !known.includes(p));
  if (unknown.length) {
    throw new pulumi.RunError(`${config.name}:pools: no pool named ${unknown.map((p) => `"${p}"`).join(', ')}; the example has ${known.join(', ')}`);
  }
  const pools = base.pools.filter((p) => selected.includes(p.name));
  const usedAllowlists = new Set(pools.flatMap((p) => p.egress ?? []));
  const credentials = (base.credentials ?? [])
    .map((c) => ({ ...c, grants: Object.fromEntries(Object.entries(c.grants).filter(([pool]) => selected.includes(pool))) }))
    .filter((c) => Object.keys(c.grants).length > 0);
  const exampleTasks = config.getBoolean('exampleTasks') ?? true;
  const tasks = exampleTasks ? (base.tasks ?? []).filter((t) => selected.includes(t.pool)) : [];
  const registry = config.get('imageRegistry');
  const tag = config.get('imageTag');

  const credentialValues: Record<string, Record<string, pulumi.Input<string>>> = {};
  for (const [key, [secretName, secretKey]] of Object.entries(EXAMPLE_CREDENTIAL_CONFIG)) {
    const value = config.getSecret(key);
    if (value === undefined) continue;
    const credential = credentials.find((c) => c.secretName === secretName);
    if (!credential) continue; // its pools are not deployed
    if (credential.keys.length !== 1 || credential.keys[0] !== secretKey) {
      throw new pulumi.RunError(`${config.name}:${key}: fills key ${secretKey} of Secret "${secretName}", which is declared with keys ${credential.keys.join(', ')}`);
    }
    credentialValues[secretName] = { [secretKey]: value };
  }

  return {
    ...base,
    namespace: config.get('namespace') ?? base.namespace,
    ...(registry !== undefined || tag !== undefined
      ? { imageOptions: { ...base.imageOptions, ...(registry !== undefined ? { registry } : {}), ...(tag !== undefined ? { tag } : {}) } }
      : {}),
    egress: (base.egress ?? []).filter((a) => usedAllowlists.has(a.name)),
    credentials,
    pools,
    tasks,
    ...(Object.keys(credentialValues).length ? { credentialValues: credentialValues as CredentialValues } : {}),
  };
}
