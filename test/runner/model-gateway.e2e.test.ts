/**
 * Codex, Claude Code and Copilot CLI through the real model gateway (see
 * support/gateway-e2e.ts); Gemini CLI and opencode in model-gateway.slow.test.ts.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Harness } from '../../core/harness';
import { demoGitServerForSuite } from '../support/git-server';
import { describeIfInstalled } from './support/agent-e2e';
import { expectThroughGateway, runPresetThroughGateway } from './support/gateway-e2e';

jest.setTimeout(180_000);

const suite = demoGitServerForSuite('paddock-gw-agents-');

describeIfInstalled('codex')('Codex CLI through the model gateway', () => {
  test('the mock sees the real key; the agent only the placeholder', async () => {
    const r = await runPresetThroughGateway('codex', Harness.codex().spec, { url: suite.git.repoUrl('demo'), caFile: suite.git.caFile });
    expectThroughGateway(r);
    expect(fs.readFileSync(path.join(r.dirs.home, '.codex/config.toml'), 'utf8')).toMatch(/\[model_providers\.paddock\][^[]*base_url = "http:\/\/127\.0\.0\.1:\d+\/local\/openai\/v1"/);
  });
});

describeIfInstalled('claude')('Claude Code through the model gateway', () => {
  test('the mock sees the real key; the agent only the placeholder', async () => {
    expectThroughGateway(await runPresetThroughGateway('claude-code', Harness.claudeCode().spec, { url: suite.git.repoUrl('demo'), caFile: suite.git.caFile }));
  });
});
