/**
 * Session state limits: the transcript given to a CLI is capped (oldest turns left out
 * first, saying how many), and a stored state past its cap gets an error naming its size,
 * the limit and what to do.
 */
import { MAX_PATCH_GZIP_BYTES, type SourceChange } from '../../core/protocol';
import { MAX_SESSION_BYTES, MAX_TRANSCRIPT_BYTES, promptWithTranscript, sessionPatchesOf, SessionState, sessionSizeProblem } from '../../core/session';

const state = (turns: Array<[string, string]>, patch = ''): SessionState => ({
  name: 'fix',
  harness: 'codex',
  turns: turns.map(([task, output]) => ({ task, prompt: `prompt of ${task}`, output })),
  patches: patch ? { repo: { base: 'a'.repeat(40), patch, bytes: patch.length } } : {},
  resume: 'transcript',
});

describe('promptWithTranscript', () => {
  test('no state or no turns: the prompt as it is', () => {
    expect(promptWithTranscript(undefined, 'go')).toBe('go');
    expect(promptWithTranscript(state([]), 'go')).toBe('go');
  });

  test('the earlier turns, oldest first, then the prompt', () => {
    expect(promptWithTranscript(state([['t1', 'did one'], ['t2', 'did two']]), 'go')).toBe(
      'This task continues session "fix". The earlier turns, oldest first:\n\n' +
        '--- turn 1 (task t1)\nUser:\nprompt of t1\n\nYou answered:\ndid one\n\n' +
        '--- turn 2 (task t2)\nUser:\nprompt of t2\n\nYou answered:\ndid two\n\n--- now\ngo',
    );
  });

  test('past the cap the oldest turns are left out, and the prompt says how many', () => {
    const big = 'x'.repeat(MAX_TRANSCRIPT_BYTES / 2);
    const prompt = promptWithTranscript(state([['t1', big], ['t2', big], ['t3', big], ['t4', 'last']]), 'go');
    // Asserted as booleans: a failure would print the whole transcript.
    expect(prompt.startsWith('This task continues session "fix". The earlier turns, oldest first (2 older turns left out):')).toBe(true);
    expect(['(task t1)', '(task t2)', '(task t3)', '(task t4)'].map((t) => prompt.includes(t))).toEqual([false, false, true, true]);
    expect(prompt.endsWith('You answered:\nlast\n\n--- now\ngo')).toBe(true);
    expect(Buffer.byteLength(prompt)).toBeLessThan(MAX_TRANSCRIPT_BYTES + 200);
  });

  test('one turn over the cap alone is cut from its start', () => {
    const prompt = promptWithTranscript(state([['t1', 'y'.repeat(MAX_TRANSCRIPT_BYTES * 2) + 'END']]), 'go');
    expect(prompt.startsWith('This task continues session "fix". The earlier turns, oldest first:\n\n…y')).toBe(true);
    expect(prompt.endsWith('END\n\n--- now\ngo')).toBe(true);
  });
});

describe('sessionSizeProblem', () => {
  test('under the cap: none; over it: its size, the limit and the way out', () => {
    expect(sessionSizeProblem(state([['t1', 'ok']], 'diff'))).toBeUndefined();
    const over = sessionSizeProblem(state([['t1', 'ok']], 'p'.repeat(MAX_SESSION_BYTES)));
    expect(over).toMatch(new RegExp(`^session "fix": its state is \\d+ bytes, over the limit of ${MAX_SESSION_BYTES} \\(a ConfigMap holds at most 1 MiB\\); .*start a new session, or set session.freshWorkspace: true$`));
  });
});

describe('sessionPatchesOf: the workspace a session carries is the run\'s recorded change', () => {
  const change = (source: string, extra: Partial<SourceChange> = {}): SourceChange => ({ source, base: 'b'.repeat(40), files: 1, insertions: 1, deletions: 0, bytes: 120, ...extra });

  test('each changed source\'s stored patch, against its base; an unchanged source carries nothing', () => {
    expect(sessionPatchesOf([change('app'), change('docs', { files: 0, insertions: 0, bytes: 0 })], { app: 'H4sIAAAA' })).toEqual({
      patches: { app: { base: 'b'.repeat(40), patch: 'H4sIAAAA', bytes: 120 } },
    });
    expect(sessionPatchesOf(undefined, undefined)).toEqual({ patches: {} });
  });

  test('a withheld change (it held a credential) is never carried: the problem names the source and why', () => {
    const r = sessionPatchesOf([change('app', { patchWithheld: true }), change('docs')], { docs: 'H4sIAAAA' });
    expect(r.patches).not.toHaveProperty('app');
    expect(r.problem).toBe('the change of source "app" holds a credential the agent was given (patchWithheld); it is never stored, so the session cannot continue from it');
  });

  test('a change over the patch cap, one missing from the report, or one not recorded at all is a problem too', () => {
    expect(sessionPatchesOf([change('app', { patchTooLarge: true })], {}).problem).toBe(`the change of source "app" is over the ${MAX_PATCH_GZIP_BYTES}-byte gzipped cap (patchTooLarge); it is too large to carry over`);
    expect(sessionPatchesOf([change('app')], {}).problem).toBe('the change of source "app" was not reported with the run');
    expect(sessionPatchesOf(undefined, undefined, 'git diff failed').problem).toBe("the run's change could not be recorded (git diff failed)");
  });
});
