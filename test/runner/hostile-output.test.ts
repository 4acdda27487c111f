/**
 * Hostile and heavy agent output, through run() with the fake agent (a real process):
 * unclosed fences, thousands of malformed blocks, output over the capture limit, and
 * prompts or env values no process can take.
 */
import * as fs from 'fs';
import * as path from 'path';
import { MAX_PARSE_ERRORS, extractResultBlocks } from '../../runner/results';
import { Redactor } from '../../runner/redaction';
import { fakeHarness, makeRunDirs, readJsonl, runTask, task } from '../support/runner-fixtures';

jest.setTimeout(120_000);

describe('result extraction is one pass over the lines', () => {
  const unclosed = (n: number) => '```result\n'.repeat(n) + '```result\n{"final": true}\n```\n';

  test('each line is looked at once, whatever the fences (counted, not timed)', () => {
    for (const n of [2_000, 20_000]) {
      const text = unclosed(n);
      const r = extractResultBlocks(text, new Redactor());
      expect(r.linesScanned).toBe(text.split('\n').length);
      // Every unclosed fence is a parse error; the final, closed block still counts.
      expect(r.results).toEqual([{ final: true }]);
      expect(r.parseErrorCount).toBe(n);
      expect(r.parseErrors).toHaveLength(MAX_PARSE_ERRORS);
      expect(r.parseErrors[0]).toEqual({ block: 1, message: expect.stringMatching(/not closed \(a new ```result fence/), excerpt: '' });
    }
  });

  test('the same blocks as before: indented fences, CRLF, empty and unclosed-at-the-end blocks', () => {
    const text = ['intro', '  ```result', '{"a": 1}', '  ```', '```result\r', '{"b":\r', ' 2}\r', '```\r', '```result', '```', '```result', '{"open": true}'].join('\n');
    const r = extractResultBlocks(text, new Redactor());
    expect(r.results).toEqual([{ a: 1 }, { b: 2 }]);
    expect(r.parseErrors.map((e) => [e.block, e.excerpt])).toEqual([
      [3, ''],
      [4, '{"open": true}'],
    ]);
    expect(r.parseErrors[1].message).toMatch(/not closed \(no closing ``` line before the end of the output\)/);
  });

  test('400 KB of unclosed fences from a real agent: the run finishes promptly with the final result', async () => {
    const dirs = makeRunDirs();
    const lines = Math.ceil(400_000 / '```result\n'.length);
    const r = await runTask(dirs, { task: task(), harness: fakeHarness('heavy', ['unclosed', String(lines)]) });
    expect(r.code).toBe(0);
    expect(readJsonl(path.join(dirs.artifacts, 'results.jsonl'))).toEqual([{ final: true }]);
    expect(r.status.counts).toEqual({ results: 1, parseErrors: lines });
    expect(r.status.timings.results).toBeLessThan(10_000); // generous: the quadratic regex took 23 s
  });
});

describe('many malformed blocks: parse errors are counted, a bounded number listed', () => {
  test('20,000 malformed blocks: status.json stays small and says how many were left out', async () => {
    const dirs = makeRunDirs();
    const r = await runTask(dirs, { task: task(), harness: fakeHarness('heavy', ['malformed', '20000']) });
    expect(r.code).toBe(0);
    expect(r.status.outcome).toBe('succeeded');
    expect(r.status.counts).toEqual({ results: 1, parseErrors: 20_000 });
    expect(r.status.parseErrors).toHaveLength(MAX_PARSE_ERRORS);
    expect(r.status.parseErrorsOmitted).toBe(20_000 - MAX_PARSE_ERRORS);
    expect(fs.statSync(path.join(dirs.artifacts, 'status.json')).size).toBeLessThan(64 * 1024);
    expect(r.stderr).toContain(`${20_000 - MAX_PARSE_ERRORS} more parse error(s) counted, not listed`);
  });
});

describe('more output than the capture limit', () => {
  test('over 64 MiB (the default limit): the final result block is kept, the dropped head is recorded, logs stay within their limit', async () => {
    const dirs = makeRunDirs();
    const total = 65 * 1024 * 1024 + 12345;
    const r = await runTask(dirs, { task: task(), harness: fakeHarness('heavy', ['bytes', String(total)]) }, { stdout: devNull(), stderr: devNull() });
    expect(r.code).toBe(0);
    expect(readJsonl(path.join(dirs.artifacts, 'results.jsonl'))).toEqual([{ final: true }]);
    expect(r.status).toMatchObject({ outcome: 'succeeded', counts: { results: 1, parseErrors: 0 }, outputTruncated: true });
    // At least what is over the limit was dropped, cut at a line start.
    expect(r.status.outputDroppedBytes).toBeGreaterThanOrEqual(total - 64 * 1024 * 1024);
    expect(r.status.outputDroppedBytes % 1024).toBe(0);
    // Each log: its first and last 8 MiB and one line saying what was left out; all artifacts fit the 64 MiB emptyDir.
    const log = path.join(dirs.artifacts, 'agent.stdout.log');
    expect(fs.statSync(log).size).toBeLessThan(16 * 1024 * 1024 + 200);
    const text = fs.readFileSync(log, 'utf8');
    expect(text).toMatch(/\n\[paddock\] \d+ bytes of agent output left out of this log \(the log keeps its first and last 8388608 bytes\)\n/);
    expect(text.endsWith('```result\n{"final": true}\n```\n')).toBe(true);
    // The kept tail starts at a line start: up to one 1 KiB line more is left out.
    const over = total + '\n```result\n{"final": true}\n```\n'.length - 16 * 1024 * 1024;
    expect(r.status.logDroppedBytes.stdout).toBeGreaterThanOrEqual(over);
    expect(r.status.logDroppedBytes.stdout).toBeLessThanOrEqual(over + 1024);
    expect(r.status.logDroppedBytes.stderr).toBe(0);
    const artifacts = fs.readdirSync(dirs.artifacts).reduce((sum, f) => sum + fs.statSync(path.join(dirs.artifacts, f)).size, 0);
    expect(artifacts).toBeLessThan(64 * 1024 * 1024);
  });

  test('small limits (options): stderr log cut too, stdout tail searched', async () => {
    const dirs = makeRunDirs();
    const r = await runTask(dirs, { task: task(), harness: fakeHarness('heavy', ['bytes', String(3 * 1024 * 1024)]) }, { maxCaptureBytes: 1024 * 1024, maxLogBytes: 64 * 1024, stdout: devNull(), stderr: devNull() });
    expect(readJsonl(path.join(dirs.artifacts, 'results.jsonl'))).toEqual([{ final: true }]);
    expect(r.status.logDroppedBytes.stderr).toBeGreaterThanOrEqual(2 * 1024 * 1024 - 64 * 1024);
    expect(r.status.logDroppedBytes.stderr).toBeLessThanOrEqual(2 * 1024 * 1024 - 64 * 1024 + 1024);
    expect(fs.statSync(path.join(dirs.artifacts, 'agent.stderr.log')).size).toBeLessThan(64 * 1024 + 200);
  });
});

describe('prompts and env no process can take', () => {
  const big = 'x'.repeat(200 * 1024);

  test('a 200 KB {prompt} is refused as invalid_spec before anything runs, naming the field and the way out', async () => {
    const dirs = makeRunDirs();
    const r = await runTask(dirs, { task: task({ prompt: big }), harness: fakeHarness('echo') });
    expect(r.code).toBe(2);
    expect(r.status.outcome).toBe('invalid_spec');
    expect(r.status.problems).toEqual([expect.stringMatching(/^task\.prompt: is 204800 bytes, over the 102400 bytes .*\{prompt_file\}.*harness "fake" passes it as an argument/)]);
    expect(fs.existsSync(path.join(dirs.home, 'report.json'))).toBe(false);
  });

  test('the same prompt through {prompt_file} or stdin runs', async () => {
    for (const args of [['{prompt_file}'], []]) {
      const dirs = makeRunDirs();
      const r = await runTask(dirs, { task: task({ prompt: big }), harness: fakeHarness(args.length ? 'prompt-file' : 'stdin', args) });
      expect(r.code).toBe(0);
      expect(r.report().promptFileContent ?? r.report().stdin).toBe(big);
    }
  });

  test('a NUL byte in env or prompt is refused by the schema, naming the field', async () => {
    const dirs = makeRunDirs();
    const r = await runTask(dirs, { task: task({ env: { MODE: 'a\u0000b' }, prompt: 'hi\u0000there' }), harness: fakeHarness('echo') });
    expect(r.code).toBe(2);
    expect(r.status.problems).toEqual(
      expect.arrayContaining([expect.stringMatching(/^env\.MODE: contains a NUL byte.*remove it/), expect.stringMatching(/^prompt: contains a NUL byte/)]),
    );
  });

  test('an argv the kernel refuses at run time (E2BIG, thrown synchronously by spawn) is failed, never internal_error', async () => {
    const dirs = makeRunDirs();
    // A harness argument (not the prompt) over the per-argument limit: only exec can tell.
    const r = await runTask(dirs, { task: task(), harness: fakeHarness('echo', ['{prompt}', 'y'.repeat(200 * 1024)]) });
    expect(r.code).toBe(1);
    expect(r.status).toMatchObject({ outcome: 'failed', message: expect.stringMatching(/cannot start the agent .*E2BIG/) });
  });
});

function devNull(): NodeJS.WritableStream {
  const { Writable } = require('stream') as typeof import('stream');
  return new Writable({ write: (_c, _e, cb) => cb() });
}
