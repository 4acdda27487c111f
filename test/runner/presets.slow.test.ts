/**
 * The Gemini CLI, opencode and Copilot CLI presets with their real CLIs (slower to start;
 * `npm run test:e2e`): the same checks as presets.e2e.test.ts, see support/preset-checks.ts.
 */
import { Harness } from '../../core/harness';
import { describeIfInstalled, runPresetE2e } from './support/agent-e2e';
import { describePresetChecks, modelSaw, TRICKY_PROMPT } from './support/preset-checks';

jest.setTimeout(180_000);

describePresetChecks('gemini-cli', { deadProviderLimitS: 60, maxRetries: true });
// opencode 1.18 has no retry setting: 5 retries with backoff from 2 s, measured ~90 s to exit 1.
describePresetChecks('opencode', { deadProviderLimitS: 150, maxRetries: false });
// copilot 1.0 has none either, but gives up after 5 retries in ~15 s.
describePresetChecks('copilot', { deadProviderLimitS: 60, maxRetries: false });

describeIfInstalled('opencode')('why the opencode preset passes the prompt on stdin', () => {
  test('with promptVia "argv", opencode run rewrites the prompt (quotes it and escapes its quotes) before the model sees it', async () => {
    const r = await runPresetE2e('opencode', Harness.opencode({ promptVia: 'argv' }).spec, 'sk-e2e-0123456789abcdef', undefined, { prompt: TRICKY_PROMPT });
    expect(r.status.outcome).toBe('succeeded');
    expect(modelSaw(r.mock, TRICKY_PROMPT)).toBe(false);
    expect(modelSaw(r.mock, `"${TRICKY_PROMPT.split('"').join('\\"')}"`)).toBe(true);
  });
});
