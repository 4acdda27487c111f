/**
 * Gemini CLI, opencode and Copilot CLI through the real model gateway (see
 * support/gateway-e2e.ts): slow, in `npm run test:e2e`.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Harness } from '../../core/harness';
import { GitServer, startGitServer } from '../support/git-server';
import { makeDemoRepos, makeTmpDir } from '../support/runner-fixtures';
import { describeIfInstalled } from './support/agent-e2e';
import { expectThroughGateway, runPresetThroughGateway } from './support/gateway-e2e';

jest.setTimeout(300_000);

let root: string;
let git: GitServer;

beforeAll(async () => {
  root = makeTmpDir('paddock-gw-agents-');
  makeDemoRepos(path.join(root, 'repos'));
  git = await startGitServer({ root: path.join(root, 'repos'), tls: true });
});

afterAll(async () => {
  await git.close();
  fs.rmSync(root, { recursive: true, force: true });
});

describeIfInstalled('gemini')('Gemini CLI through the model gateway', () => {
  test('the mock sees the real key; the agent only the placeholder', async () => {
    expectThroughGateway(await runPresetThroughGateway('gemini-cli', Harness.geminiCli().spec, { url: git.repoUrl('demo'), caFile: git.caFile }));
  });
});

describeIfInstalled('opencode')('opencode through the model gateway', () => {
  test('the mock sees the real key; the agent only the placeholder', async () => {
    expectThroughGateway(await runPresetThroughGateway('opencode', Harness.opencode().spec, { url: git.repoUrl('demo'), caFile: git.caFile }));
  });
});

describeIfInstalled('copilot')('Copilot CLI (bring your own key) through the model gateway', () => {
  test('the mock sees the real key; the agent only the placeholder', async () => {
    expectThroughGateway(await runPresetThroughGateway('copilot', Harness.copilot().spec, { url: git.repoUrl('demo'), caFile: git.caFile }), { toolSeesPlaceholder: false });
  });
});
