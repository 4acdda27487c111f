/**
 * Redaction of credential values from everything the runner writes: its log, the
 * agent's logs, results.jsonl and status.json.
 *
 * Secrets are matched as literal strings. A multi-line secret (a key file) is also
 * registered line by line, so the line-oriented stream redactor catches it whole.
 * The stream redactor holds back text until a line is complete (or, for a very long
 * line, until no secret can straddle the cut), so a secret split across two chunks of
 * the agent's output is still caught.
 */
import { StringDecoder } from 'string_decoder';

export const REDACTED = '[REDACTED]';

/** Shorter values are not redacted on their own: they would blank out ordinary text. */
export const MIN_SECRET_LENGTH = 4;
/** String values inside a JSON credential file are redacted from this length on. */
export const MIN_JSON_VALUE_LENGTH = 8;

/** Pending text beyond this is flushed even without a newline. */
const MAX_PENDING = 64 * 1024;

export class Redactor {
  private readonly secrets = new Set<string>();
  private pattern: RegExp | undefined;
  private longest = 0;

  /** Register a secret value (and, if it spans lines, each of its lines). */
  add(value: string | undefined): void {
    if (value === undefined) return;
    const candidates = [value, value.trim(), ...value.split(/\r?\n/).map((l) => l.trim())];
    for (const c of candidates) {
      if (c.length >= MIN_SECRET_LENGTH && !c.includes('\n')) {
        this.secrets.add(c);
      }
    }
    this.pattern = undefined;
  }

  /** Register the content of a credential file: whole, by line, and (JSON) each long string value. */
  addFileContent(content: string): void {
    this.add(content);
    let parsed: unknown;
    try {
      parsed = JSON.parse(content);
    } catch {
      return;
    }
    const visit = (v: unknown): void => {
      if (typeof v === 'string') {
        if (v.length >= MIN_JSON_VALUE_LENGTH) this.add(v);
      } else if (Array.isArray(v)) {
        v.forEach(visit);
      } else if (v && typeof v === 'object') {
        Object.values(v).forEach(visit);
      }
    };
    visit(parsed);
  }

  get size(): number {
    return this.secrets.size;
  }

  /** Length of the longest registered secret (0 when none). */
  get maxLength(): number {
    this.compile();
    return this.longest;
  }

  redact(text: string): string {
    const re = this.compile();
    return re ? text.replace(re, REDACTED) : text;
  }

  /** Redact every string (and key) inside a JSON value. */
  redactValue(value: unknown): unknown {
    if (typeof value === 'string') return this.redact(value);
    if (Array.isArray(value)) return value.map((v) => this.redactValue(v));
    if (value && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [this.redact(k), this.redactValue(v)]));
    }
    return value;
  }

  /** Start offsets of every match, for the stream redactor's safe cut. */
  matches(text: string): Array<{ start: number; end: number }> {
    const re = this.compile();
    if (!re) return [];
    return [...text.matchAll(re)].map((m) => ({ start: m.index ?? 0, end: (m.index ?? 0) + m[0].length }));
  }

  private compile(): RegExp | undefined {
    if (this.pattern || this.secrets.size === 0) return this.pattern;
    // Longest first, so a secret that contains another is replaced whole.
    const list = [...this.secrets].sort((a, b) => b.length - a.length);
    this.longest = list[0].length;
    this.pattern = new RegExp(list.map(escapeRegExp).join('|'), 'g');
    return this.pattern;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Redacts a byte stream incrementally. `push` returns the redacted text that is safe
 * to emit now; `end` returns the rest.
 */
export class StreamRedactor {
  private readonly decoder = new StringDecoder('utf8');
  private pending = '';

  constructor(private readonly redactor: Redactor) {}

  push(chunk: Buffer | string): string {
    this.pending += typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    let cut = this.pending.lastIndexOf('\n') + 1;
    if (this.pending.length - cut > MAX_PENDING) {
      cut = this.safeCut();
    }
    if (cut === 0) return '';
    const out = this.pending.slice(0, cut);
    this.pending = this.pending.slice(cut);
    return this.redactor.redact(out);
  }

  end(): string {
    const out = this.pending + this.decoder.end();
    this.pending = '';
    return this.redactor.redact(out);
  }

  /**
   * A cut point no secret can straddle: a secret still arriving starts within the last
   * (longest - 1) characters; a complete match that crosses the point moves it back.
   */
  private safeCut(): number {
    let cut = Math.max(0, this.pending.length - Math.max(0, this.redactor.maxLength - 1));
    for (const m of this.redactor.matches(this.pending)) {
      if (m.start < cut && m.end > cut) cut = m.start;
    }
    return cut;
  }
}

/**
 * Splits already-redacted text into lines and writes each with a prefix; a line is
 * written once complete (or at `end`).
 */
export class LinePrefixer {
  private partial = '';

  constructor(
    private readonly prefix: string,
    private readonly write: (line: string) => void,
  ) {}

  push(text: string): void {
    if (!text) return;
    const lines = (this.partial + text).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) this.write(`${this.prefix}${line}\n`);
    if (this.partial.length > MAX_PENDING) {
      // A very long line is logged in pieces rather than held without bound.
      this.write(`${this.prefix}${this.partial}\n`);
      this.partial = '';
    }
  }

  end(): void {
    if (this.partial) this.write(`${this.prefix}${this.partial}\n`);
    this.partial = '';
  }
}
