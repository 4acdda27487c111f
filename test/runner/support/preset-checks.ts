/**
 * What every harness preset must do with its real CLI, run by the runner against the
 * loopback mock model server (the mock records each request body, so "the model got the
 * prompt" is checked on the wire):
 *   - its default promptVia delivers a prompt with quotes, backticks, $() and newlines
 *     byte for byte;
 *   - promptVia "stdin" delivers a prompt longer than the argv limit;
 *   - promptVia "file" gives the agent a file holding the prompt and tells the model where;
 *   - a dead provider (HTTP 500 to everything) ends the run `failed`, not `timed_out`,
 *     within `deadProviderLimitS`, and maxRetries is obeyed: by the CLI where it has a
 *     setting, else by the real model gateway (the run then goes through it).
 * Fast presets run in presets.e2e.test.ts (npm test), slow ones in
 * presets.slow.test.ts (npm run test:e2e).
 */
import * as fs from 'fs';
import * as path from 'path';
import { Harness, HarnessPresetOptions, PROMPT_FILE_INSTRUCTION } from '../../../core/harness';
import type { MockModelServer, RecordedRequest } from '../../support/mock-model-server';
import { MockPreset, PRESET_PROGRAM } from '../../support/mock-provider';
import { AgentE2eResult, describeIfInstalled, runPresetE2e } from './agent-e2e';
import { runPresetThroughGateway } from './gateway-e2e';

/** Everything a shell or an argv-rewriting CLI could change. */
export const TRICKY_PROMPT = [
  'Fix the "flaky" test: it\'s `broken` when $(whoami) or ${HOME} is set;',
  "- keep 'single' and \"double\" quotes, a backslash \\n and a tab\there",
  '  and end with a ```result block.',
].join('\n');

/** Over the argv limit of one element (MAX_ARG_STRLEN, 128 KiB on Linux), and tricky throughout. */
export const LONG_PROMPT = `Begin.\n${'A "long" prompt with \'quotes\', `ticks` and $(subshells).\n'.repeat(3700)}End.`;

const SECRET = 'sk-e2e-preset-0123456789abcdef';

/** Requests that went to the model (not Claude's connectivity probes). */
export function modelRequests(mock: MockModelServer): RecordedRequest[] {
  return mock.requests.filter((r) => r.protocol !== 'probe' && r.kind !== 'count_tokens');
}

/** Whether some string in some model request body holds `text` exactly. */
export function modelSaw(mock: MockModelServer, text: string): boolean {
  return modelRequests(mock).some((r) => strings(r.body).some((s) => s.includes(text)));
}

function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (value && typeof value === 'object') return Object.values(value).flatMap(strings);
  return [];
}

function explain(r: AgentE2eResult): string {
  return `outcome ${r.status?.outcome} (${r.status?.message ?? ''}) in ${r.durationMs} ms\n--- model requests\n${r.mock.requests
    .map((q) => `${q.method} ${q.url} ${q.kind}`)
    .join('\n')}\n--- stderr\n${r.stderr.slice(-3000)}`;
}

function expectSucceeded(r: AgentE2eResult): void {
  if (r.code !== 0 || r.status.counts.results !== 1) throw new Error(`the run did not succeed: ${explain(r)}`);
  expect(r.status).toMatchObject({ outcome: 'succeeded', counts: { results: 1, parseErrors: 0 } });
}

const dead = (req: RecordedRequest) =>
  req.protocol === 'probe' ? undefined : { status: 500, body: JSON.stringify({ error: { message: 'the mock provider is down', type: 'server_error' } }) };

export interface PresetCheckOptions {
  /** A dead provider must fail the run within this many seconds. */
  readonly deadProviderLimitS: number;
  /** Who keeps the preset's maxRetries: the CLI (its own setting) or the model gateway (a CLI without one). */
  readonly maxRetries: 'cli' | 'gateway';
}

export function describePresetChecks(preset: MockPreset, opts: PresetCheckOptions): void {
  const run = (options: HarnessPresetOptions, more: Parameters<typeof runPresetE2e>[4] = {}) =>
    runPresetE2e(preset, Harness.fromPreset(preset, options).spec, SECRET, undefined, more);

  describeIfInstalled(PRESET_PROGRAM[preset])(`Harness.fromPreset("${preset}") with the real CLI`, () => {
    test(`its default promptVia ("${Harness.fromPreset(preset).promptVia}") delivers quotes, backticks, $() and newlines to the model byte for byte`, async () => {
      const r = await run({}, { prompt: TRICKY_PROMPT });
      expectSucceeded(r);
      expect(modelSaw(r.mock, TRICKY_PROMPT)).toBe(true);
    });

    test('promptVia "stdin" delivers a prompt longer than the argv limit byte for byte', async () => {
      expect(Buffer.byteLength(LONG_PROMPT)).toBeGreaterThan(200 * 1024);
      const r = await run({ promptVia: 'stdin' }, { prompt: LONG_PROMPT });
      expectSucceeded(r);
      expect(r.status.command.join(' ')).not.toContain('Begin.');
      expect(modelSaw(r.mock, LONG_PROMPT)).toBe(true);
    });

    test('promptVia "file": the agent gets the prompt as a file, byte for byte, and the model the instruction naming it', async () => {
      // The runner writes the prompt file into its scratch dir (a fresh paddock-* under tmp).
      const r = await run({ promptVia: 'file' }, { prompt: TRICKY_PROMPT, shellCommand: (dirs) => `cat ${dirs.tmp}/paddock-*/prompt.md > prompt-copy.md` });
      expectSucceeded(r);
      expect(fs.readFileSync(path.join(r.workdir, 'prompt-copy.md'), 'utf8')).toBe(TRICKY_PROMPT);
      const [before, after] = PROMPT_FILE_INSTRUCTION.split('{prompt_file}');
      const instruction = new RegExp(`${escape(before)}${escape(r.dirs.tmp)}/paddock-[^/]+/prompt\\.md${escape(after)}`);
      expect(modelRequests(r.mock).some((q) => strings(q.body).some((s) => instruction.test(s)))).toBe(true);
      expect(modelSaw(r.mock, TRICKY_PROMPT)).toBe(false);
    });

    if (opts.maxRetries === 'cli') {
      test(`a dead provider (HTTP 500 to everything) ends the run "failed", not "timed_out", within ${opts.deadProviderLimitS} s`, async () => {
        const r = await run({}, { onRequest: dead, timeoutSeconds: 600 });
        expect({ outcome: r.status.outcome, fast: r.durationMs < opts.deadProviderLimitS * 1000 }).toEqual({ outcome: 'failed', fast: true });
        expect(r.status.exitCode).not.toBe(0);
        expect(modelRequests(r.mock).length).toBeGreaterThan(0);
      }, (opts.deadProviderLimitS + 30) * 1000);

      test('maxRetries: 0 makes the CLI give up after one model request', async () => {
        const r = await run({ maxRetries: 0 }, { onRequest: dead, timeoutSeconds: 600 });
        expect(r.status.outcome).toBe('failed');
        expect(modelRequests(r.mock).map((q) => q.kind)).toEqual(['custom']);
      }, 60_000);
    } else {
      const viaGateway = (options: HarnessPresetOptions) =>
        runPresetThroughGateway(preset, Harness.fromPreset(preset, options).spec, undefined, { onRequest: dead, timeoutSeconds: 600 });
      const finals = (log: string[]) => log.filter((l) => l.endsWith('in a row from one caller (max-retries 2); answered 424, final'));

      test(`a dead provider (HTTP 500 to everything) through the model gateway ends the run "failed", not "timed_out", within ${opts.deadProviderLimitS} s, saying so`, async () => {
        const r = await viaGateway({});
        expect({ outcome: r.status.outcome, fast: r.durationMs < opts.deadProviderLimitS * 1000 }).toEqual({ outcome: 'failed', fast: true });
        expect(r.status.exitCode).not.toBe(0);
        expect(r.status.message).toMatch(
          /^the agent exited with code \d+: the model provider "[a-z-]+" failed 3 requests in a row \(HTTP 5xx, 429 or no answer\), and the model gateway answered the last one as final \(the harness allows 2 retries, maxRetries\)$/,
        );
        expect(finals(r.gatewayLog).length).toBeGreaterThan(0);
        expect(finals(r.gatewayLog).every((l) => l.includes(': 3 failed requests in a row'))).toBe(true);
      }, (opts.deadProviderLimitS + 30) * 1000);
    }

    // What the gateway's cap rests on, for every CLI: its 424 is final (a custom harness may set gatewayMaxRetries for any).
    const capped = opts.maxRetries === 'gateway' ? Harness.fromPreset(preset, { maxRetries: 0 }).spec : { ...Harness.fromPreset(preset).spec, gatewayMaxRetries: 0 };
    test(`${opts.maxRetries === 'gateway' ? 'maxRetries: 0' : 'gatewayMaxRetries: 0'}: the model gateway answers every failure as final (424) and the CLI retries none`, async () => {
      const r = await runPresetThroughGateway(preset, capped, undefined, { onRequest: dead, timeoutSeconds: 600 });
      expect(r.status.outcome).toBe('failed');
      expect(r.status.message).toMatch(/^the agent exited with code \d+: the model provider "[a-z-]+" failed 1 request in a row .*\(the harness allows 0 retries, maxRetries\)$/);
      // Each request the provider got was answered final: none was a retry the gateway let through.
      const finals = r.gatewayLog.filter((l) => l.endsWith('in a row from one caller (max-retries 0); answered 424, final'));
      expect(finals.length).toBeGreaterThan(0);
      expect(finals).toHaveLength(modelRequests(r.mock).length);
      expect(finals.every((l) => l.includes(': 1 failed request in a row'))).toBe(true);
    }, 60_000);
  });
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
