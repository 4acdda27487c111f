/**
 * Gemini CLI, opencode and Copilot CLI through the real model gateway (see
 * support/gateway-e2e.ts): slow, in `npm run test:e2e`.
 */
import { Harness } from '../../core/harness';
import { demoGitServerForSuite } from '../support/git-server';
import { describeIfInstalled } from './support/agent-e2e';
import { expectThroughGateway, runPresetThroughGateway } from './support/gateway-e2e';

jest.setTimeout(300_000);

const suite = demoGitServerForSuite('paddock-gw-agents-');

describeIfInstalled('gemini')('Gemini CLI through the model gateway', () => {
  test('the mock sees the real key; the agent only the placeholder', async () => {
    expectThroughGateway(await runPresetThroughGateway('gemini-cli', Harness.geminiCli().spec, { url: suite.git.repoUrl('demo'), caFile: suite.git.caFile }));
  });
});

describeIfInstalled('opencode')('opencode through the model gateway', () => {
  test('the mock sees the real key; the agent only the placeholder', async () => {
    expectThroughGateway(await runPresetThroughGateway('opencode', Harness.opencode().spec, { url: suite.git.repoUrl('demo'), caFile: suite.git.caFile }));
  });
});

describeIfInstalled('copilot')('Copilot CLI (bring your own key) through the model gateway', () => {
  test('the mock sees the real key; the agent only the placeholder', async () => {
    expectThroughGateway(await runPresetThroughGateway('copilot', Harness.copilot().spec, { url: suite.git.repoUrl('demo'), caFile: suite.git.caFile }), { toolSeesPlaceholder: false });
  });
});
