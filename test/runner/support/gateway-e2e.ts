/**
 * Every preset through the real model gateway (`startGateway`, on loopback) with its real
 * CLI against the mock model server: the gateway holds the real key, the agent gets the
 * pool's gateway token as a placeholder. Shared by model-gateway.e2e.test.ts (CI) and
 * model-gateway.slow.test.ts.
 */
import * as fs from 'fs';
import * as path from 'path';
import { MODEL_PROVIDERS } from '../../../core/model-providers';
import { startGateway } from '../../../controller/model-gateway';
import type { HarnessSpec } from '../../../policy/specs';
import { MOCK_PROVIDER, MockPreset } from '../../support/mock-provider';
import { listFiles, makeTmpDir } from '../../support/runner-fixtures';
import { AgentE2eInput, AgentE2eResult, expectAgentRun, runAgentE2e } from './agent-e2e';

/** The recipe's env without its base URLs: the gateway wiring sets those. */
const BASE_URL_VARS = ['ANTHROPIC_BASE_URL', 'GOOGLE_GEMINI_BASE_URL', 'COPILOT_PROVIDER_BASE_URL'];

export interface GatewayE2e extends AgentE2eResult {
  readonly realKey: string;
  readonly token: string;
  /** What the gateway logged. */
  readonly gatewayLog: string[];
}

export async function runPresetThroughGateway(
  preset: MockPreset,
  harness: HarnessSpec,
  source?: { url: string; caFile?: string },
  more: Pick<AgentE2eInput, 'onRequest' | 'timeoutSeconds' | 'prompt'> = {},
): Promise<GatewayE2e> {
  const recipe = MOCK_PROVIDER[preset];
  const provider = MODEL_PROVIDERS[recipe.secretEnv];
  const realKey = `sk-real-${preset}-0123456789abcdef0123`;
  const token = `paddock-pool-token-${preset}-7f3a9c`;
  const dir = makeTmpDir('paddock-gw-');
  const keyFile = path.join(dir, 'key');
  const tokenFile = path.join(dir, 'token');
  fs.writeFileSync(keyFile, realKey);
  fs.writeFileSync(tokenFile, token);
  const gatewayLog: string[] = [];
  const env = Object.fromEntries(Object.entries(recipe.env('{mock}')).filter(([k]) => !BASE_URL_VARS.includes(k)));
  const r = await runAgentE2e({
    harness: { ...harness, credentialEnv: [recipe.secretEnv] },
    model: recipe.model,
    ...more,
    ...(source ? { sourceUrl: source.url } : {}),
    ...(source?.caFile ? { gitCaFile: source.caFile } : {}),
    credentials: {},
    taskEnv: env,
    pool: async (mockUrl) => {
      const gw = await startGateway({
        host: '127.0.0.1',
        port: 0,
        log: (line) => gatewayLog.push(line),
        config: { pools: { local: { tokenFile, providers: { [provider.name]: { upstream: mockUrl, header: provider.header, value: provider.value, keyFile } } } } },
      });
      return {
        spec: {
          apiVersion: 'paddock.dev/v1alpha1',
          kind: 'Pool',
          name: 'local',
          capabilities: [harness.capability],
          harnesses: [harness.name],
          gateway: { url: `${gw.url}/local`, tokenFile, credentials: [{ env: recipe.secretEnv, provider: provider.name }] },
        },
        close: () => gw.close(),
      };
    },
  });
  return { ...r, realKey, token, gatewayLog };
}

/** The mock saw the real key, in the provider's header; the agent only ever had the placeholder. */
export function expectThroughGateway(r: GatewayE2e, opts: { toolSeesPlaceholder?: boolean } = {}): void {
  expectAgentRun(r, r.realKey);
  const provider = Object.values(MODEL_PROVIDERS).find((p) => r.mock.requests.some((q) => String(q.headers[p.header] ?? '').includes(r.realKey)));
  expect(provider).toBeDefined();
  // The placeholder never left the gateway.
  expect(r.mock.requests.filter((q) => JSON.stringify(q.headers).includes(r.token) || q.url.includes(r.token))).toEqual([]);
  // The agent's tool saw the placeholder (copilot scrubs it from its tools' env), never the key.
  if (opts.toolSeesPlaceholder ?? true) expect(r.toolEnv).toContain(r.token);
  expect(r.toolEnv).not.toContain(r.realKey);
  // No file the agent can reach holds the key.
  for (const root of [r.dirs.home, r.dirs.workspace, r.dirs.tmp, r.dirs.artifacts]) {
    for (const f of listFiles(root)) expect(`${f}: ${fs.readFileSync(path.join(root, f), 'utf8')}`).not.toContain(r.realKey);
  }
}
