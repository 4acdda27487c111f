/**
 * The agent's environment, built from an explicit allowlist. Nothing else from the
 * runner's environment reaches the agent (the runner's own env may hold git
 * credentials, cloud tokens, service account settings).
 *
 * Order, later wins: basics < harness.env < pool.env < task.env < granted credentials;
 * HOME is always the agent's home, where the config layers were written.
 * Basics: HOME (the agent's home), PATH, LANG / LC_ALL / TZ when set on the runner,
 * and the proxy variables (HTTPS_PROXY, HTTP_PROXY, NO_PROXY and lower-case forms)
 * when set on the runner or given by pool.egress (which wins).
 */
import type { HarnessSpec, PoolSpec, TaskSpec } from '../policy/specs';

export const PASSED_THROUGH = ['PATH', 'LANG', 'LC_ALL', 'TZ'] as const;
export const PROXY_VARS = ['HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY', 'https_proxy', 'http_proxy', 'no_proxy'] as const;

const FALLBACK_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface AgentEnvInput {
  readonly runnerEnv: NodeJS.ProcessEnv;
  readonly home: string;
  readonly harness: HarnessSpec;
  readonly pool?: PoolSpec;
  readonly task: TaskSpec;
  readonly credentialEnv: Readonly<Record<string, string>>;
}

/** The basics alone (also what git gets while fetching sources). */
export function baseEnv(runnerEnv: NodeJS.ProcessEnv, home: string, pool?: PoolSpec): Record<string, string> {
  const env: Record<string, string> = { HOME: home, PATH: runnerEnv.PATH || FALLBACK_PATH };
  for (const name of [...PASSED_THROUGH, ...PROXY_VARS]) {
    const v = runnerEnv[name];
    if (v !== undefined && name !== 'PATH') env[name] = v;
  }
  const egress = pool?.egress;
  if (egress?.proxy) {
    for (const name of ['HTTPS_PROXY', 'HTTP_PROXY', 'https_proxy', 'http_proxy']) env[name] = egress.proxy;
  }
  if (egress?.noProxy) {
    env.NO_PROXY = env.no_proxy = egress.noProxy.join(',');
  }
  return env;
}

export function buildAgentEnv(input: AgentEnvInput): Record<string, string> {
  return {
    ...baseEnv(input.runnerEnv, input.home, input.pool),
    ...(input.harness.env ?? {}),
    ...(input.pool?.env ?? {}),
    ...(input.task.env ?? {}),
    ...input.credentialEnv,
    // The config layers and credential files were written here; a layer cannot move it.
    HOME: input.home,
  };
}
