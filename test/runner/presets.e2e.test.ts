/**
 * The Codex and Claude Code presets with their real CLIs (fast: a few seconds a run):
 * prompt delivery per promptVia and a dead provider, see support/preset-checks.ts. Gemini
 * CLI, opencode and Copilot CLI: presets.slow.test.ts.
 */
import { Harness } from '../../core/harness';
import { describeIfInstalled, runPresetE2e } from './support/agent-e2e';
import { describePresetChecks, LONG_PROMPT } from './support/preset-checks';

jest.setTimeout(120_000);

describePresetChecks('codex', { deadProviderLimitS: 60, maxRetries: 'cli' });
describePresetChecks('claude-code', { deadProviderLimitS: 60, maxRetries: 'cli' });

describeIfInstalled('codex')('the argv limit', () => {
  test('a prompt over the argv limit with promptVia "argv" is refused as invalid before the agent starts, naming the fix', async () => {
    const r = await runPresetE2e('codex', Harness.codex({ promptVia: 'argv' }).spec, 'sk-e2e-0123456789abcdef', undefined, { prompt: LONG_PROMPT });
    expect(r.status).toMatchObject({ outcome: 'invalid_spec', message: expect.stringMatching(/task\.prompt: is \d+ bytes, over the 102400 bytes a prompt may have as an argv element \(\{prompt\}\); shorten it, or pass it with promptVia "stdin" or "file"/) });
    expect(r.mock.requests).toEqual([]);
  });

  test('an argv element or environment variable over the kernel limit fails the run as "failed" with E2BIG, not as an internal error', async () => {
    const r = await runPresetE2e('codex', Harness.codex().spec, 'sk-e2e-0123456789abcdef', undefined, { taskEnv: { HUGE: 'x'.repeat(200 * 1024) } });
    expect(r.status).toMatchObject({ outcome: 'failed', message: expect.stringMatching(/^cannot start the agent "codex": E2BIG \(an argv element or environment variable is over the kernel's limit/) });
    expect(r.mock.requests).toEqual([]);
  });
});
