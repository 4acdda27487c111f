/**
 * A two-task session per preset, through the runner, with the real CLIs against the
 * loopback mock model server and a real git checkout: the first task starts the session,
 * the second continues it from the state the first left (artifacts/session.json, what the
 * warm worker hands to the controller and gets back with the next lease). The second
 * run's model requests carry the first turn: natively (the CLI's own conversation files
 * restored into a new HOME, under another workspace path, and its resume argv: the earlier
 * prompt, tool call and answer are in the request's message history, no transcript) or, for
 * a CLI that cannot resume (opencode), as a transcript in the prompt. Its tool call sees the
 * file the first run wrote.
 */
import * as fs from 'fs';
import * as path from 'path';
import { gunzipSync } from 'zlib';
import { Harness } from '../../core/harness';
import { unpackCliState, type SessionState } from '../../core/session';
import { checkNoSecretsInConfigMap } from '../../policy/rules';
import { nativeResume } from '../../core/resume';
import { demoGitServerForSuite } from '../support/git-server';
import { MockPreset } from '../support/mock-provider';
import { SESSION_FILE } from '../../runner/session';
import { describeIfInstalled, runPresetE2e } from './support/agent-e2e';

jest.setTimeout(300_000);

const suite = demoGitServerForSuite('paddock-sessions-e2e-');

/** Each turn appends to turns.txt; the second also copies what it found there to seen.txt. */
const SHELL = 'cat turns.txt > seen.txt 2>/dev/null; echo turn >> turns.txt';
const FIRST_PROMPT = 'FIRST-TURN-PROMPT: start a turns file.';
const SECOND_PROMPT = 'SECOND-TURN-PROMPT: continue it.';

const cases: Array<[string, MockPreset, string, 'native' | 'transcript', () => Harness]> = [
  ['codex', 'codex', 'codex', 'native', () => Harness.codex()],
  // Its resume subcommand goes before the `-` that reads the prompt from stdin.
  ['codex (prompt on stdin)', 'codex', 'codex', 'native', () => Harness.codex({ promptVia: 'stdin' })],
  ['claude-code', 'claude-code', 'claude', 'native', () => Harness.claudeCode()],
  ['gemini-cli', 'gemini-cli', 'gemini', 'native', () => Harness.geminiCli()],
  ['opencode', 'opencode', 'opencode', 'transcript', () => Harness.opencode()],
  ['copilot', 'copilot', 'copilot', 'native', () => Harness.copilot()],
];

const TRANSCRIPT_HEADER = /This task continues session (\\)?"work(\\)?"/;

describe.each(cases)('%s: a two-task session', (_label, preset, program, resume, make) => {
  describeIfInstalled(program)(program, () => {
    test('the second run gets the first turn and continues from its change', async () => {
      const secret = `sk-session-${preset}-0123456789`;
      const common = { shellCommand: () => SHELL, sourceUrl: suite.git.repoUrl('demo'), gitCaFile: suite.git.caFile, timeoutSeconds: 150 };
      const first = await runPresetE2e(preset, make().spec, secret, undefined, { ...common, taskName: 'turn-one', prompt: FIRST_PROMPT, session: { ref: { name: 'work', create: true } } });
      if (first.status.outcome !== 'succeeded') throw new Error(`first run: ${first.status.outcome}: ${first.status.message}\n${first.stderr.slice(-2000)}`);
      const state = JSON.parse(fs.readFileSync(path.join(first.dirs.artifacts, SESSION_FILE), 'utf8')) as SessionState;
      fs.rmSync(first.dirs.root, { recursive: true, force: true });
      expect(first.status.outcome).toBe('succeeded');
      expect(state).toMatchObject({ name: 'work', harness: make().name, resume, turns: [{ task: 'turn-one', prompt: FIRST_PROMPT }] });
      if (resume === 'native') {
        expect(state.cli).toEqual({ id: expect.stringMatching(/^[0-9a-f-]{36}$/), state: expect.any(String), bytes: expect.any(Number), files: expect.any(Number) });
        expect(state.cli!.files).toBeGreaterThan(0);
        // The conversation only: never the preset's config nor a credential.
        expect(gunzipSync(Buffer.from(state.cli!.state!, 'base64')).toString()).not.toContain(secret);
      } else expect(state.cli).toBeUndefined();
      expect(gunzipSync(Buffer.from(state.patches.repo.patch, 'base64')).toString()).toMatch(/\+\+\+ b\/turns\.txt\n@@ -0,0 \+1 @@\n\+turn\n/);
      // The first run's requests knew of no earlier turn.
      expect(first.mock.requests.some((q) => q.rawBody.includes('This task continues session'))).toBe(false);

      const second = await runPresetE2e(preset, make().spec, secret, undefined, { ...common, taskName: 'turn-two', prompt: SECOND_PROMPT, session: { ref: { name: 'work' }, state } });
      const seen = fs.readFileSync(path.join(second.workdir, 'seen.txt'), 'utf8');
      const turns = fs.readFileSync(path.join(second.workdir, 'turns.txt'), 'utf8');
      const next = JSON.parse(fs.readFileSync(path.join(second.dirs.artifacts, SESSION_FILE), 'utf8')) as SessionState;
      fs.rmSync(second.dirs.root, { recursive: true, force: true });
      expect(second.status.outcome).toBe('succeeded');
      // The model saw the first turn: its prompt and the answer it gave, then the new prompt.
      const toolCall = second.mock.requests.find((q) => q.kind === 'tool_call');
      expect(toolCall).toBeDefined();
      expect(toolCall!.rawBody).toContain('FIRST-TURN-PROMPT');
      expect(toolCall!.rawBody).toContain('Done: wrote proof.txt');
      expect(toolCall!.rawBody).toContain('SECOND-TURN-PROMPT');
      if (resume === 'native') {
        // Natively: the CLI's own history (the earlier tool call and its answer as messages), no transcript.
        expect(second.mock.requests.some((q) => TRANSCRIPT_HEADER.test(q.rawBody))).toBe(false);
        // The first run's tool call is in the history (no prompt holds its command), and the resume argv was given.
        expect(toolCall!.rawBody).toContain('cat turns.txt > seen.txt');
        expect(second.status.command).toEqual(expect.arrayContaining(nativeResume(make().spec)!.argv.map((a) => a.replace('{session_id}', state.cli!.id))));
        expect(next.cli!.id).toBe(state.cli!.id);
        // The real CLI's files pass the scan the controller runs before it stores them (no false alarm).
        const files = unpackCliState(next.cli!.state!);
        const scanned = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'session-work' }, data: Object.fromEntries(files.map((f, i) => [`cli-${i}`, f.content.toString('utf8')])) };
        expect(checkNoSecretsInConfigMap(scanned, [])).toEqual([]);
        expect(files.map((f) => f.content.toString('latin1')).join('\n')).not.toContain(secret);
      } else {
        expect(TRANSCRIPT_HEADER.test(toolCall!.rawBody)).toBe(true);
      }
      // The workspace continued: the second run's tool call found the first run's file.
      expect(seen).toBe('turn\n');
      expect(turns).toBe('turn\nturn\n');
      expect(next.turns.map((t) => t.task)).toEqual(['turn-one', 'turn-two']);
    });
  });
});
