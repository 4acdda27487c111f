/**
 * Codex, Claude Code and Copilot CLI through the real model gateway (see
 * support/gateway-e2e.ts); Gemini CLI and opencode in model-gateway.slow.test.ts.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Harness } from '../../core/harness';
import { GitServer, startGitServer } from '../support/git-server';
import { makeDemoRepos, makeTmpDir } from '../support/runner-fixtures';
import { describeIfInstalled } from './support/agent-e2e';
import { expectThroughGateway, runPresetThroughGateway } from './support/gateway-e2e';

jest.setTimeout(180_000);

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

describeIfInstalled('codex')('Codex CLI through the model gateway', () => {
  test('the mock sees the real key; the agent only the placeholder', async () => {
    const r = await runPresetThroughGateway('codex', Harness.codex().spec, { url: git.repoUrl('demo'), caFile: git.caFile });
    expectThroughGateway(r);
    expect(fs.readFileSync(path.join(r.dirs.home, '.codex/config.toml'), 'utf8')).toMatch(/\[model_providers\.paddock\][^[]*base_url = "http:\/\/127\.0\.0\.1:\d+\/local\/openai\/v1"/);
  });
});

describeIfInstalled('claude')('Claude Code through the model gateway', () => {
  test('the mock sees the real key; the agent only the placeholder', async () => {
    expectThroughGateway(await runPresetThroughGateway('claude-code', Harness.claudeCode().spec, { url: git.repoUrl('demo'), caFile: git.caFile }));
  });
});
