/**
 * The Gemini CLI, opencode and Copilot CLI presets with their real CLIs (slower to start;
 * `npm run test:e2e`): the same checks as presets.e2e.test.ts, see support/preset-checks.ts.
 */
import { Harness } from '../../core/harness';
import { describeIfInstalled, runPresetE2e } from './support/agent-e2e';
import { describePresetChecks, modelSaw, TRICKY_PROMPT } from './support/preset-checks';

jest.setTimeout(180_000);

describePresetChecks('gemini-cli', { deadProviderLimitS: 60, maxRetries: 'cli' });
// opencode 1.18 and copilot 1.0 have no retry setting (on their own: 5 retries, ~90 s and ~20 s
// to exit 1): the model gateway keeps the count.
describePresetChecks('opencode', { deadProviderLimitS: 60, maxRetries: 'gateway' });
describePresetChecks('copilot', { deadProviderLimitS: 60, maxRetries: 'gateway' });

describeIfInstalled('opencode')('why the opencode preset passes the prompt on stdin', () => {
  test('with promptVia "argv", opencode run rewrites the prompt (quotes it and escapes its quotes) before the model sees it', async () => {
    const r = await runPresetE2e('opencode', Harness.opencode({ promptVia: 'argv' }).spec, 'sk-e2e-0123456789abcdef', undefined, { prompt: TRICKY_PROMPT });
    expect(r.status.outcome).toBe('succeeded');
    expect(modelSaw(r.mock, TRICKY_PROMPT)).toBe(false);
    expect(modelSaw(r.mock, `"${TRICKY_PROMPT.split('"').join('\\"')}"`)).toBe(true);
  });
});
