/** gatewayWiring: where each CLI is pointed at the model gateway, and the retry cap in its route. */
import * as fs from 'fs';
import * as path from 'path';
import { Harness } from '../../core/harness';
import { gatewayWiring } from '../../runner/gateway-wiring';
import { Redactor } from '../../runner/redaction';
import type { PoolSpec } from '../../policy/specs';
import { makeTmpDir } from '../support/runner-fixtures';

function poolVia(env: string, provider: string): PoolSpec {
  const tokenFile = path.join(makeTmpDir('paddock-wiring-'), 'token');
  fs.writeFileSync(tokenFile, 'pool-token-0123456789');
  return { apiVersion: 'paddock.dev/v1alpha1', kind: 'Pool', name: 'p', capabilities: [], harnesses: [], gateway: { url: 'http://gw:8080/p', tokenFile, credentials: [{ env, provider }] } };
}

describe('gatewayWiring', () => {
  test('opencode: its provider\'s baseURL is the gateway route with the harness\'s retry cap (maxRetries)', () => {
    const w = gatewayWiring(poolVia('OPENAI_API_KEY', 'openai'), Harness.opencode({ maxRetries: 1 }).spec, 'openai/gpt-5', new Redactor());
    expect(JSON.parse(w.config[0].content).provider.openai.options.baseURL).toBe('http://gw:8080/p/openai;max-retries=1/v1');
    expect(JSON.parse(gatewayWiring(poolVia('OPENAI_API_KEY', 'openai'), Harness.opencode().spec, 'openai/gpt-5', new Redactor()).config[0].content).provider.openai.options.baseURL).toBe(
      'http://gw:8080/p/openai;max-retries=2/v1',
    );
  });

  test('copilot: COPILOT_PROVIDER_BASE_URL carries the cap', () => {
    const w = gatewayWiring(poolVia('COPILOT_PROVIDER_API_KEY', 'copilot-byok'), Harness.copilot({ maxRetries: 0 }).spec, 'm', new Redactor());
    expect(w.env).toMatchObject({ COPILOT_PROVIDER_BASE_URL: 'http://gw:8080/p/copilot-byok;max-retries=0/v1', COPILOT_PROVIDER_API_KEY: 'pool-token-0123456789' });
  });

  test('a CLI with its own retry setting gets a plain route: the gateway passes every answer through', () => {
    expect(gatewayWiring(poolVia('ANTHROPIC_API_KEY', 'anthropic'), Harness.claudeCode().spec, 'm', new Redactor()).env.ANTHROPIC_BASE_URL).toBe('http://gw:8080/p/anthropic');
  });
});
