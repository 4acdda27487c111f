/** Where a session's resume argv goes (core/resume.ts), and which files a state pattern takes. */
import { insertResumeArgs, resumeArgs, resumeStatePaths, resumeSummary, statePathCovers } from '../../core/resume';

const ID = '0cb916db-26aa-40f2-86b5-1ba81b225fd2';

describe('insertResumeArgs: just before the prompt\'s elements, after any policy argv', () => {
  test('before a `--` that precedes {prompt}', () => {
    const template = ['claude', '--print', '--', '{prompt}'];
    // The policy's argv already sits before the prompt's elements.
    const rendered = ['claude', '--print', '--disallowedTools', 'Bash', '--', 'hi'];
    expect(insertResumeArgs(template, rendered, ['--resume', ID])).toEqual(['claude', '--print', '--disallowedTools', 'Bash', '--resume', ID, '--', 'hi']);
  });

  test('before an element holding {prompt}, before a last `-` (the prompt on stdin), else at the end', () => {
    expect(insertResumeArgs(['copilot', '--prompt={prompt}'], ['copilot', '--prompt=hi'], ['--session-id=x'])).toEqual(['copilot', '--session-id=x', '--prompt=hi']);
    expect(insertResumeArgs(['codex', 'exec', '-'], ['codex', 'exec', '-'], ['resume', '--last'])).toEqual(['codex', 'exec', 'resume', '--last', '-']);
    expect(insertResumeArgs(['opencode', 'run'], ['opencode', 'run'], ['--continue'])).toEqual(['opencode', 'run', '--continue']);
    expect(insertResumeArgs(['x', '{prompt_file}'], ['x', '/tmp/p'], [])).toEqual(['x', '/tmp/p']);
  });
});

test('the first run adds `start`, a later one `argv`; {session_id} is filled in everywhere', () => {
  const resume = { start: ['--session-id', '{session_id}'], argv: ['--resume={session_id}'], state: ['.copilot/session-state/{session_id}'] };
  expect(resumeArgs(resume, ID, false)).toEqual(['--session-id', ID]);
  expect(resumeArgs(resume, ID, true)).toEqual([`--resume=${ID}`]);
  expect(resumeArgs({ argv: ['resume', '--last'], state: ['.codex/sessions'] }, ID, false)).toEqual([]);
  expect(resumeStatePaths(resume, ID)).toEqual([`.copilot/session-state/${ID}`]);
});

test('statePathCovers: a pattern takes the files under it, "*" one name, {session_id} any one name', () => {
  expect(statePathCovers('.codex/sessions', '.codex/sessions/2026/12/01/r.jsonl')).toBe(true);
  expect(statePathCovers('.codex/sessions', '.codex/config.toml')).toBe(false);
  expect(statePathCovers('.gemini/tmp/*/chats', '.gemini/tmp/repo/chats/s.jsonl')).toBe(true);
  expect(statePathCovers('.gemini/tmp/*/chats', '.gemini/tmp/repo/.project_root')).toBe(false);
  expect(statePathCovers('.copilot/session-state/{session_id}', '.copilot/session-state/abc/events.jsonl')).toBe(true);
  expect(statePathCovers('.codex', '.codex')).toBe(true);
});

test('resumeSummary: native, or the transcript and why', () => {
  expect(resumeSummary({ resume: { argv: ['-c'], state: ['.x'] } })).toBe('native');
  expect(resumeSummary({ resume: { unsupported: 'it keeps no history' } })).toBe('transcript (it keeps no history)');
  expect(resumeSummary({})).toBe('transcript (the harness declares no resume)');
});
