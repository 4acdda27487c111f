/**
 * The runner with Gemini CLI and opencode (slower to start than Codex and Claude Code;
 * run with `npx jest test/runner/agents --testPathIgnorePatterns=/node_modules/`
 * or the lead's `npm run test:e2e`). Same checks as agents.e2e.test.ts.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Harness } from '../../core/harness';
import { GitServer, startGitServer } from '../support/git-server';
import { makeDemoRepos, makeTmpDir } from '../support/runner-fixtures';
import { describeIfInstalled, expectAgentRun, runPresetE2e } from './support/agent-e2e';

jest.setTimeout(300_000);

let root: string;
let git: GitServer;

beforeAll(async () => {
  root = makeTmpDir('paddock-agents-slow-');
  makeDemoRepos(path.join(root, 'repos'));
  git = await startGitServer({ root: path.join(root, 'repos'), tls: true });
});

afterAll(async () => {
  await git.close();
  fs.rmSync(root, { recursive: true, force: true });
});

describeIfInstalled('gemini')('Gemini CLI (Harness.geminiCli())', () => {
  test('tool call, proof file, results.jsonl (from .response), status.json', async () => {
    const secret = 'gemini-e2e-key-0123456789abcdef';
    expectAgentRun(await runPresetE2e('gemini-cli', Harness.geminiCli().spec, secret, git.repoUrl('demo'), { gitCaFile: git.caFile }), secret);
  });
});

describeIfInstalled('opencode')('opencode (Harness.opencode())', () => {
  test('tool call, proof file, results.jsonl, status.json', async () => {
    const secret = 'sk-e2e-opencode-0123456789abcdef';
    expectAgentRun(await runPresetE2e('opencode', Harness.opencode().spec, secret, git.repoUrl('demo'), { gitCaFile: git.caFile }), secret);
  });
});
