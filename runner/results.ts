/**
 * Results: read the agent's final output where the harness says (`results.from`:
 * stdout | json-field | file) and extract every fenced ```result block as JSON. A block
 * that is not valid JSON becomes a parse error record, never a crash.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { ResultsSpec } from '../policy/specs';
import { Redactor } from './redaction';
import { ParseErrorRecord } from './status';

const EXCERPT_CHARS = 200;

/** Parse errors kept in full; the rest are only counted (status.json and the worker's report stay small). */
export const MAX_PARSE_ERRORS = 100;

/** An opening fence line "```result" (optionally indented) and a closing "```" line. */
const OPEN_FENCE = /^[ \t]*```result[ \t]*\r?$/;
const CLOSE_FENCE = /^[ \t]*```[ \t]*\r?$/;

/** The text the harness declares as the agent's final output, or a parse error saying why there is none. */
export function finalOutput(spec: ResultsSpec, stdout: string, home: string): { text: string } | { error: string } {
  switch (spec.from) {
    case 'stdout':
      return { text: stdout };
    case 'json-field': {
      const field = spec.field ?? 'result';
      const doc = parseJsonOutput(stdout);
      if (doc === undefined) return { error: `results.from json-field: stdout is not a JSON object` };
      if (!(field in doc)) return { error: `results.from json-field: the JSON on stdout has no field "${field}"` };
      const v = doc[field];
      return { text: typeof v === 'string' ? v : JSON.stringify(v) };
    }
    case 'file': {
      if (!spec.path) return { error: 'results.from file: results.path is not set' };
      const file = path.join(home, spec.path);
      try {
        return { text: fs.readFileSync(file, 'utf8') };
      } catch (err) {
        return { error: `results.from file: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)})` };
      }
    }
  }
}

/**
 * The JSON object the CLI printed: the whole of stdout, or else its last non-empty line
 * (some CLIs print progress lines first).
 */
function parseJsonOutput(stdout: string): Record<string, unknown> | undefined {
  const asObject = (s: string): Record<string, unknown> | undefined => {
    try {
      const v: unknown = JSON.parse(s);
      return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  };
  const whole = asObject(stdout.trim());
  if (whole) return whole;
  const last = stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l)
    .pop();
  return last?.startsWith('{') ? asObject(last) : undefined;
}

export interface ExtractedResults {
  readonly results: unknown[];
  /** The first MAX_PARSE_ERRORS parse errors. */
  readonly parseErrors: ParseErrorRecord[];
  /** All parse errors, including those not kept. */
  readonly parseErrorCount: number;
  /** Lines the scanner looked at: each line of the text once (the linearity tests count them). */
  readonly linesScanned: number;
}

/**
 * Every fenced ```result block: one pass over the lines, each line looked at once
 * (a backtracking regex was quadratic in unclosed fences). A fence left open, at the
 * end of the text or by a new ```result fence (no JSON holds such a line), is a parse
 * error, and the new fence starts the next block.
 */
export function extractResultBlocks(text: string, redactor: Redactor, maxParseErrors = MAX_PARSE_ERRORS): ExtractedResults {
  const results: unknown[] = [];
  const parseErrors: ParseErrorRecord[] = [];
  let parseErrorCount = 0;
  const parseError = (block: number, message: string, body: string): void => {
    if (parseErrorCount++ < maxParseErrors) parseErrors.push({ block, message: redactor.redact(message), excerpt: redactor.redact(body.slice(0, EXCERPT_CHARS)) });
  };
  let n = 0;
  let lines = 0;
  let bodyStart = -1;
  for (let start = 0; start <= text.length; ) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end);
    lines++;
    // An opening fence needs a line after it.
    const opens = end < text.length && OPEN_FENCE.test(line);
    if (bodyStart >= 0 && opens) {
      parseError(n, 'the block is not closed (a new ```result fence starts before a closing ``` line)', text.slice(bodyStart, Math.min(start, bodyStart + EXCERPT_CHARS)));
      bodyStart = -1;
    }
    if (bodyStart < 0) {
      if (opens) {
        n++;
        bodyStart = end + 1;
      }
    } else if (CLOSE_FENCE.test(line)) {
      const body = text.slice(bodyStart, Math.max(bodyStart, start - 1)).replace(/\r$/, '');
      bodyStart = -1;
      try {
        results.push(redactor.redactValue(JSON.parse(body)));
      } catch (err) {
        parseError(n, (err as Error).message, body);
      }
    }
    start = end + 1;
  }
  if (bodyStart >= 0) parseError(n, 'the block is not closed (no closing ``` line before the end of the output)', text.slice(bodyStart, bodyStart + EXCERPT_CHARS));
  return { results, parseErrors, parseErrorCount, linesScanned: lines };
}

/** One JSON document per line; always written, empty when there are no results. */
export function writeResultsJsonl(artifactsDir: string, results: readonly unknown[], redactor: Redactor): string {
  const file = path.join(artifactsDir, 'results.jsonl');
  // Redact the serialized form as well: a secret may only appear once escaped.
  fs.writeFileSync(file, results.map((r) => redactor.redact(JSON.stringify(r)) + '\n').join(''));
  return file;
}
