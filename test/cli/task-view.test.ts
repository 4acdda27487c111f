/** The task client's text views say what a run changed and where it was delivered (issue 14). */
import { changeWords } from '../../cli/tasks';

describe('changeWords: a run\'s change and delivery in the text views', () => {
  const change = { source: 'repo', base: 'b'.repeat(40), files: 3, insertions: 10, deletions: 2, bytes: 900 };

  test('nothing recorded, nothing said', () => {
    expect(changeWords(undefined)).toBe('');
    expect(changeWords({})).toBe('');
  });

  test('each source, then a push with its pull request', () => {
    const run = {
      changes: [change, { ...change, source: 'docs', files: 1, insertions: 1, deletions: 0 }],
      delivery: { state: 'pushed', repository: 'https://git.example/acme/work.git', branch: 'paddock/fix', commit: 'abcdef0123456789abcdef0123456789abcdef01', pullRequest: { url: 'https://git.example/acme/work/pull/7', number: 7 } },
    };
    expect(changeWords(run)).toBe('\trepo: 3 file(s) +10 -2; docs: 1 file(s) +1 -0; pushed abcdef012345 to paddock/fix, https://git.example/acme/work/pull/7');
  });

  test('markers and a delivery that did not push say why', () => {
    expect(changeWords({ changes: [{ ...change, patchWithheld: true }], delivery: { state: 'failed', branch: 'paddock/fix', reason: 'the change of source "repo" holds a credential the agent was given (patchWithheld); nothing was pushed' } })).toBe(
      '\trepo: 3 file(s) +10 -2, patch withheld (it held a credential); delivery failed paddock/fix (the change of source "repo" holds a credential the agent was given (patchWithheld); nothing was pushed)',
    );
    expect(changeWords({ changes: [{ ...change, patchTooLarge: true }], delivery: { state: 'conflict', branch: 'b', reason: 'the branch moved' } })).toBe('\trepo: 3 file(s) +10 -2, patch too large to store; delivery conflict b (the branch moved)');
  });
});
