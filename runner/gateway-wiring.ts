/**
 * Point the agent's CLI at the model gateway instead of its provider: the credential
 * variable holds the pool's gateway token (a placeholder: no provider accepts it), and
 * each CLI gets the gateway route of its provider the way it takes a base URL:
 *   codex     a [model_providers.paddock] in .codex/config.toml (base_url, env_key)
 *   claude    ANTHROPIC_BASE_URL
 *   gemini    GOOGLE_GEMINI_BASE_URL
 *   opencode  the model's provider in opencode.json, OpenAI-compatible, options.baseURL
 *   copilot   COPILOT_PROVIDER_BASE_URL (bring-your-own-key mode)
 * The real keys stay in the gateway, which puts them on the way out. A harness with
 * gatewayMaxRetries (a CLI with no retry setting) gets routes `<provider>;max-retries=N`:
 * the gateway ends the CLI's retries of a failing provider there.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { ConfigFileSpec, HarnessSpec, PoolSpec } from '../policy/specs';
import { MAX_RETRIES_PARAM } from '../core/model-providers';
import { Redactor } from './redaction';
import { RunFailure } from './status';

export interface GatewayWiring {
  readonly env: Record<string, string>;
  readonly config: ConfigFileSpec[];
}

export function gatewayWiring(pool: PoolSpec | undefined, harness: HarnessSpec, model: string, redactor: Redactor): GatewayWiring {
  const gw = pool?.gateway;
  if (!gw) return { env: {}, config: [] };
  const tokenFile = gw.tokenFile;
  let token: string;
  try {
    token = fs.readFileSync(tokenFile, 'utf8').trim();
  } catch (err) {
    throw new RunFailure('invalid_spec', `pool.gateway.tokenFile: cannot read ${tokenFile} (${(err as NodeJS.ErrnoException).code ?? err}); the pod should get it from its projected ServiceAccount token volume "gateway-token"`);
  }
  if (!token) throw new RunFailure('invalid_spec', `pool.gateway.tokenFile: ${tokenFile} is empty`);
  redactor.add(token);
  const env: Record<string, string> = {};
  const config: ConfigFileSpec[] = [];
  const program = path.basename(harness.command[0] ?? '');
  for (const c of gw.credentials) {
    env[c.env] = token;
    const base = `${gw.url}/${c.provider}${harness.gatewayMaxRetries !== undefined ? `;${MAX_RETRIES_PARAM}=${harness.gatewayMaxRetries}` : ''}`;
    if (program === 'codex' && c.env === 'OPENAI_API_KEY') {
      config.push({
        path: '.codex/config.toml',
        format: 'toml',
        content: ['model_provider = "paddock"', '[model_providers.paddock]', 'name = "paddock"', `base_url = "${base}/v1"`, `env_key = "${c.env}"`, 'wire_api = "responses"', ''].join('\n'),
      });
    } else if (program === 'claude' && c.env === 'ANTHROPIC_API_KEY') {
      env.ANTHROPIC_BASE_URL = base;
    } else if (program === 'gemini' && c.env === 'GEMINI_API_KEY') {
      env.GOOGLE_GEMINI_BASE_URL = base;
    } else if (program === 'opencode' && c.env === 'OPENAI_API_KEY') {
      const [provider, ...rest] = model.split('/');
      const id = rest.join('/') || provider;
      config.push({
        path: '.config/opencode/opencode.json',
        format: 'json',
        content: JSON.stringify({
          provider: { [provider]: { npm: '@ai-sdk/openai-compatible', name: provider, options: { baseURL: `${base}/v1`, apiKey: `{env:${c.env}}` }, models: { [id]: { name: id } } } },
        }),
      });
    } else if (program === 'copilot' && c.env === 'COPILOT_PROVIDER_API_KEY') {
      env.COPILOT_PROVIDER_BASE_URL = `${base}/v1`;
    }
  }
  return { env, config };
}
