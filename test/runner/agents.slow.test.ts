/**
 * The runner with Gemini CLI and opencode (slower to start than Codex and Claude Code;
 * run with `npx jest test/runner/agents --testPathIgnorePatterns=/node_modules/`
 * or the lead's `npm run test:e2e`). Same checks as agents.e2e.test.ts.
 */
import { Harness } from '../../core/harness';
import { demoGitServerForSuite } from '../support/git-server';
import { describeIfInstalled, expectAgentRun, runPresetE2e } from './support/agent-e2e';

jest.setTimeout(300_000);

const suite = demoGitServerForSuite('paddock-agents-slow-');

describeIfInstalled('gemini')('Gemini CLI (Harness.geminiCli())', () => {
  test('tool call, proof file, results.jsonl (from .response), status.json', async () => {
    const secret = 'gemini-e2e-key-0123456789abcdef';
    expectAgentRun(await runPresetE2e('gemini-cli', Harness.geminiCli().spec, secret, suite.git.repoUrl('demo'), { gitCaFile: suite.git.caFile }), secret);
  });
});

describeIfInstalled('opencode')('opencode (Harness.opencode())', () => {
  test('tool call, proof file, results.jsonl, status.json', async () => {
    const secret = 'sk-e2e-opencode-0123456789abcdef';
    expectAgentRun(await runPresetE2e('opencode', Harness.opencode().spec, secret, suite.git.repoUrl('demo'), { gitCaFile: suite.git.caFile }), secret);
  });
});
