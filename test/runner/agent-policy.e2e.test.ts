/**
 * Per-task agent policy against the real CLIs (test/agents), through the runner, each
 * preset against the loopback mock model server. One task per CLI sets every item the
 * CLI can enforce, and the mock shows the result: the tools each request offers, the
 * system prompt it carries, when the CLI stops. The mock asks for a shell call anyway:
 * with the shell off the CLI refuses it and proof.txt is never written.
 *
 * Every policy holds a shell tool in its allowlist and `shell: false`: a deny wins.
 */
import * as fs from 'fs';
import { Harness } from '../../core/harness';
import type { AgentPolicySpec } from '../../policy/specs';
import type { RecordedRequest } from '../support/mock-model-server';
import { MockPreset } from '../support/mock-provider';
import { AgentE2eResult, describeIfInstalled, runPresetE2e } from './support/agent-e2e';

jest.setTimeout(240_000);

const MARK = 'PADDOCK-POLICY-MARK: never push to main.';

/** Requests that offered tools (the agent's own turns, not titles or routing). */
const turns = (r: AgentE2eResult): RecordedRequest[] => r.mock.requests.filter((q) => q.toolNames.length > 0);

function systemOf(q: RecordedRequest): string {
  const b = q.body ?? {};
  return JSON.stringify(b.system ?? b.systemInstruction ?? b.instructions ?? '') + JSON.stringify((b.messages ?? b.input ?? []).filter((m: any) => m.role === 'system' || m.role === 'developer'));
}

async function runWithPolicy(preset: MockPreset, harness: ReturnType<typeof Harness.fromPreset>, policy: AgentPolicySpec): Promise<AgentE2eResult> {
  const r = await runPresetE2e(preset, harness.spec, `sk-policy-${preset}-0123456789`, undefined, { policy, timeoutSeconds: 150 });
  fs.rmSync(r.dirs.root, { recursive: true, force: true });
  return r;
}

/** The first request that offered tools; fails with the run's log when there is none. */
function firstTurn(r: AgentE2eResult): RecordedRequest {
  const first = turns(r)[0];
  if (!first) throw new Error(`the CLI sent no request with tools (${r.status.outcome}: ${r.status.message})\n--- stderr\n${r.stderr.slice(-3000)}`);
  return first;
}

describeIfInstalled('claude')('Claude Code: --tools, --disallowedTools, --max-turns, --append-system-prompt', () => {
  test('offered only Read and Write (Edit denied, Bash off), the appended system prompt, stopped after 1 turn', async () => {
    const r = await runWithPolicy('claude-code', Harness.claudeCode(), { allowedTools: ['Read', 'Write', 'Edit', 'Bash'], deniedTools: ['Edit'], shell: false, maxTurns: 1, appendSystemPrompt: MARK });
    expect(r.status.command).toEqual(expect.arrayContaining(['--tools', 'Read,Write', '--disallowedTools', 'Edit,Bash', '--max-turns', '1', '--append-system-prompt', MARK]));
    const first = firstTurn(r);
    expect(first.toolNames).toEqual(expect.arrayContaining(['Read', 'Write']));
    expect(first.toolNames).not.toContain('Bash');
    expect(first.toolNames).not.toContain('Edit');
    expect(systemOf(first)).toContain(MARK);
    // The CLI refused the shell call it was not offered, and stopped at its turn limit.
    expect(r.proof).toBeUndefined();
    expect(r.stdout + r.stderr).toMatch(/error_max_turns|maximum number of turns/i);
    expect(r.status.outcome).toBe('failed');
  });
});

describeIfInstalled('gemini')('Gemini CLI: tools.core, tools.exclude, model.maxSessionTurns, ~/.gemini/GEMINI.md', () => {
  test('offered only read_file (write_file denied, the shell off), the appended system prompt, stopped after 1 turn', async () => {
    const r = await runWithPolicy('gemini-cli', Harness.geminiCli(), { allowedTools: ['read_file', 'write_file', 'run_shell_command'], deniedTools: ['write_file'], shell: false, maxTurns: 1, appendSystemPrompt: MARK });
    const first = firstTurn(r);
    expect(first.toolNames).toEqual(['read_file']);
    expect(systemOf(first)).toContain(MARK);
    expect(r.proof).toBeUndefined();
    expect(r.stdout + r.stderr).toMatch(/max session turns/i);
    expect(r.status.outcome).toBe('failed');
  });
});

describeIfInstalled('codex')('Codex: features.shell_tool / unified_exec off, developer_instructions', () => {
  test('no exec_command offered, the appended instructions sent, the shell call refused', async () => {
    const r = await runWithPolicy('codex', Harness.codex(), { shell: false, appendSystemPrompt: MARK });
    const first = firstTurn(r);
    expect(first.toolNames).not.toContain('exec_command');
    expect(first.toolNames).not.toContain('shell');
    expect(JSON.stringify(first.body)).toContain(MARK);
    expect(r.proof).toBeUndefined();
  });
});

describeIfInstalled('opencode')('opencode: permission allow/deny, instructions file', () => {
  test('offered only read (write denied, bash off though the preset allows it), the appended system prompt', async () => {
    const r = await runWithPolicy('opencode', Harness.opencode(), { allowedTools: ['read', 'write', 'bash'], deniedTools: ['write'], shell: false, appendSystemPrompt: MARK });
    const first = firstTurn(r);
    expect(first.toolNames).toEqual(['read']);
    expect(systemOf(first)).toContain(MARK);
    expect(r.proof).toBeUndefined();
  });
});

describeIfInstalled('copilot')('Copilot CLI: --available-tools, --excluded-tools, ~/.copilot/copilot-instructions.md', () => {
  test('offered only view and create (edit denied, bash off), the appended system prompt', async () => {
    const r = await runWithPolicy('copilot', Harness.copilot(), { allowedTools: ['view', 'create', 'edit', 'bash'], deniedTools: ['edit'], shell: false, appendSystemPrompt: MARK });
    const first = firstTurn(r);
    expect([...first.toolNames].sort()).toEqual(['create', 'view']);
    expect(systemOf(first)).toContain(MARK);
    expect(r.proof).toBeUndefined();
  }, 240_000);
});

describe('an item the CLI cannot enforce stops the run before anything starts (invalid_spec, the CLI and the item named)', () => {
  test.each([
    ['codex', () => Harness.codex(), { maxTurns: 5 }, /harness "codex" \(codex\) cannot enforce policy maxTurns 5: codex exec has no limit on model turns/],
    ['opencode', () => Harness.opencode(), { maxTurns: 5 }, /harness "opencode" \(opencode\) cannot enforce policy maxTurns 5: opencode 1\.18 has no turn limit/],
    ['copilot', () => Harness.copilot(), { maxTurns: 5 }, /harness "copilot" \(copilot\) cannot enforce policy maxTurns 5/],
  ] as const)('%s', async (preset, make, policy, message) => {
    const r = await runPresetE2e(preset as MockPreset, make().spec, 'sk-unused-0123456789', undefined, { policy });
    fs.rmSync(r.dirs.root, { recursive: true, force: true });
    expect(r.code).toBe(2);
    expect(r.status.outcome).toBe('invalid_spec');
    expect(r.status.message).toMatch(message);
    expect(r.mock.requests).toEqual([]);
  });
});
