/**
 * How a task points each harness preset's CLI at the loopback mock model server:
 * the model name, the credential variable, and the task's env and config layers.
 * One recipe per preset, shared by the suites that run the real CLIs through the
 * runner (test/runner, test/images). `mockUrl` is the server's base URL, no /v1.
 */
import type { ConfigFileSpec } from '../../policy/specs';

export type MockPreset = 'codex' | 'claude-code' | 'gemini-cli' | 'opencode' | 'copilot';

export const MOCK_PRESETS: readonly MockPreset[] = ['codex', 'claude-code', 'gemini-cli', 'opencode', 'copilot'];

/** The CLI program each preset runs (its command[0]). */
export const PRESET_PROGRAM: Record<MockPreset, string> = { codex: 'codex', 'claude-code': 'claude', 'gemini-cli': 'gemini', opencode: 'opencode', copilot: 'copilot' };

export interface MockProviderRecipe {
  readonly model: string;
  /** The credential the CLI reads, granted to the pool (or passed in local mode). */
  readonly secretEnv: string;
  env(mockUrl: string): Record<string, string>;
  config(mockUrl: string): ConfigFileSpec[];
}

const none = () => ({});
const noFiles = (): ConfigFileSpec[] => [];

export const MOCK_PROVIDER: Record<MockPreset, MockProviderRecipe> = {
  codex: {
    model: 'mock-model',
    secretEnv: 'OPENAI_API_KEY',
    env: none,
    // Same file as the preset's layer, merged key by key: the preset's own provider (and its
    // retry caps) pointed at the mock, the way a user points it at a gateway.
    config: (mockUrl) => [
      { path: '.codex/config.toml', format: 'toml', content: ['[model_providers.paddock-openai]', `base_url = "${mockUrl}/v1"`, ''].join('\n') },
    ],
  },
  'claude-code': {
    model: 'claude-mock',
    secretEnv: 'ANTHROPIC_API_KEY',
    env: (mockUrl) => ({ ANTHROPIC_BASE_URL: mockUrl }),
    config: noFiles,
  },
  'gemini-cli': {
    model: 'gemini-mock',
    secretEnv: 'GEMINI_API_KEY',
    env: (mockUrl) => ({ GOOGLE_GEMINI_BASE_URL: mockUrl }),
    config: noFiles,
  },
  opencode: {
    model: 'mock/mock-model',
    secretEnv: 'OPENAI_API_KEY',
    env: none,
    config: (mockUrl) => [
      {
        path: '.config/opencode/opencode.json',
        format: 'json',
        content: JSON.stringify({
          provider: {
            mock: {
              npm: '@ai-sdk/openai-compatible',
              name: 'Mock',
              options: { baseURL: `${mockUrl}/v1`, apiKey: '{env:OPENAI_API_KEY}' },
              models: { 'mock-model': { name: 'Mock model' } },
            },
          },
        }),
      },
    ],
  },
  copilot: {
    model: 'mock-model',
    secretEnv: 'COPILOT_PROVIDER_API_KEY',
    env: (mockUrl) => ({ COPILOT_OFFLINE: 'true', COPILOT_PROVIDER_BASE_URL: `${mockUrl}/v1` }),
    config: noFiles,
  },
};
