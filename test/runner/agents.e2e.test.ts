/**
 * The runner with the real agent CLIs (installed from npm into test/agents/), each
 * driven by its Harness preset from the construct library, against the loopback mock
 * model server: one shell tool call that writes proof.txt in the workspace (a real git
 * checkout), then a final message with a ```result block. Codex and Claude Code here
 * (CI); Gemini CLI and opencode in agents.slow.test.ts.
 *
 * The task layer points each CLI at the mock server; the credential comes from the
 * runner's env through the preset's credentialEnv (local mode) and must be redacted.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Harness } from '../../core/harness';
import { demoGitServerForSuite } from '../support/git-server';
import { describeIfInstalled, expectAgentRun, runPresetE2e } from './support/agent-e2e';

jest.setTimeout(180_000);

const suite = demoGitServerForSuite('paddock-agents-');

describeIfInstalled('codex')('Codex CLI (Harness.codex())', () => {
  test('tool call, proof file, results.jsonl, status.json', async () => {
    const secret = 'sk-e2e-codex-0123456789abcdef';
    const r = await runPresetE2e('codex', Harness.codex().spec, secret, suite.git.repoUrl('demo'), { gitCaFile: suite.git.caFile });
    expectAgentRun(r, secret);
    // The preset's layer and the task's layer were merged.
    const config = fs.readFileSync(path.join(r.dirs.home, '.codex/config.toml'), 'utf8');
    expect(config).toMatch(/sandbox_mode = "danger-full-access"/);
    expect(config).toMatch(/^base_url = "http:\/\/127\.0\.0\.1:\d+\/v1"$/m);
  });
});

describeIfInstalled('claude')('Claude Code (Harness.claudeCode())', () => {
  test('tool call, proof file, results.jsonl (from .result), status.json', async () => {
    const secret = 'sk-ant-e2e-claude-0123456789abcdef';
    expectAgentRun(await runPresetE2e('claude-code', Harness.claudeCode().spec, secret, suite.git.repoUrl('demo'), { gitCaFile: suite.git.caFile }), secret);
  });
});
