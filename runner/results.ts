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

export interface ExtractedResults {
  readonly results: unknown[];
  readonly parseErrors: ParseErrorRecord[];
}

const EXCERPT_CHARS = 200;

/** A fence line "```result" (optionally indented), the body, a closing "```" line. */
const RESULT_BLOCK = /^[ \t]*```result[ \t]*\r?\n([\s\S]*?)^[ \t]*```[ \t]*$/gm;

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

export function extractResultBlocks(text: string, redactor: Redactor): ExtractedResults {
  const results: unknown[] = [];
  const parseErrors: ParseErrorRecord[] = [];
  let n = 0;
  for (const m of text.matchAll(RESULT_BLOCK)) {
    n++;
    const body = m[1].replace(/\r?\n$/, '');
    try {
      results.push(redactor.redactValue(JSON.parse(body)));
    } catch (err) {
      parseErrors.push({
        block: n,
        message: redactor.redact((err as Error).message),
        excerpt: redactor.redact(body.slice(0, EXCERPT_CHARS)),
      });
    }
  }
  return { results, parseErrors };
}

/** One JSON document per line; always written, empty when there are no results. */
export function writeResultsJsonl(artifactsDir: string, results: readonly unknown[], redactor: Redactor): string {
  const file = path.join(artifactsDir, 'results.jsonl');
  // Redact the serialized form as well: a secret may only appear once escaped.
  fs.writeFileSync(file, results.map((r) => redactor.redact(JSON.stringify(r)) + '\n').join(''));
  return file;
}
