/**
 * The one argument parser of the `paddock` command: node's util.parseArgs
 * (strict), wrapped so that every command reports bad usage the same way:
 * a UsageError whose message names the flag and what to write instead, exit 2.
 * `-h`/`--help` is an option of every command.
 */
import * as fs from 'fs';
import { parseArgs } from 'util';

/** A bad command line: the CLI prints `paddock <command>: <message>` and exits 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  /** May be given more than once; the values are collected in order. */
  readonly multiple?: boolean;
  readonly short?: string;
  /** A value shown in the "needs a value" message, e.g. "task.json". */
  readonly example?: string;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

export type OptionValues<O extends OptionSpecs> = {
  readonly [K in keyof O]?: O[K] extends { readonly type: 'boolean' } ? boolean : O[K] extends { readonly multiple: true } ? string[] : string;
};

export interface CommandLine<O extends OptionSpecs> {
  readonly values: OptionValues<O>;
  readonly positionals: string[];
  /** `-h`/`--help` was given: print the usage and exit 0. */
  readonly help: boolean;
}

const HELP: OptionSpec = { type: 'boolean', short: 'h' };

/** The flags of a command as the error messages list them. */
export function knownFlags(options: OptionSpecs): string {
  const names = Object.keys(options).map((name) => `--${name}`);
  return names.length ? names.join(', ') : 'none but --help';
}

/**
 * Parse one command's argv. Unknown flags, missing values, repeated single
 * flags and stray positionals are UsageErrors; `--help` wins over all of them.
 */
export function parseCommandLine<O extends OptionSpecs>(argv: readonly string[], options: O, positionals: { readonly max: number } = { max: 0 }): CommandLine<O> {
  const end = argv.indexOf('--');
  if ((end < 0 ? argv : argv.slice(0, end)).some((a) => a === '-h' || a === '--help')) {
    return { values: {}, positionals: [], help: true };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...argv], options: { ...options, help: HELP }, strict: true, allowPositionals: true, tokens: true });
  } catch (err) {
    throw new UsageError(describeParseError(err as NodeJS.ErrnoException, argv, options));
  }
  const seen = new Set<string>();
  for (const token of parsed.tokens ?? []) {
    if (token.kind !== 'option') continue;
    const spec = options[token.name];
    if (token.name === 'help' || !spec) continue;
    if (!spec.multiple && seen.has(token.name)) throw new UsageError(`--${token.name} is given twice`);
    seen.add(token.name);
    if (spec.type === 'string' && (token.value === undefined || token.value === '')) throw new UsageError(needsValue(token.name, spec));
  }
  if (parsed.positionals.length > positionals.max) {
    const extra = parsed.positionals[positionals.max];
    throw new UsageError(
      extra.startsWith('-') ? `unknown option ${extra}; known: ${knownFlags(options)}` : `unexpected argument "${extra}"; known options: ${knownFlags(options)}`,
    );
  }
  const values = { ...(parsed.values as Record<string, unknown>) };
  delete values.help;
  return { values: values as OptionValues<O>, positionals: parsed.positionals, help: false };
}

function needsValue(name: string, spec: OptionSpec): string {
  return `--${name} needs a value${spec.example ? `, e.g. --${name} ${spec.example}` : ''}`;
}

function describeParseError(err: NodeJS.ErrnoException, argv: readonly string[], options: OptionSpecs): string {
  if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const flag = /'([^']+)'/.exec(err.message)?.[1] ?? argv.find((a) => a.startsWith('-')) ?? '';
    return `unknown option ${flag.split('=')[0]}; known: ${knownFlags(options)}`;
  }
  if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    const name = /--([A-Za-z0-9-]+)/.exec(err.message)?.[1];
    const spec = name !== undefined ? options[name] : undefined;
    if (spec?.type === 'string') return needsValue(name!, spec);
    if (spec) return `--${name} takes no value; write --${name} alone`;
  }
  return err.message;
}

/** A flag that must be a whole number >= 1. */
export function positiveInt(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} "${value}" must be a positive integer, e.g. ${flag} 4`);
  return n;
}

/** `"a"`, `"a" or "b"`, `"a", "b" or "c"`: for "use one of" messages. */
export function oneOf(names: readonly string[]): string {
  const quoted = names.map((n) => `"${n}"`);
  return quoted.length <= 1 ? quoted.join('') : `${quoted.slice(0, -1).join(', ')} or ${quoted[quoted.length - 1]}`;
}

/** A flag naming a folder that must exist. */
export function existingDir(dir: string, flag: string): string {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new UsageError(`${flag} "${dir}" is not a folder; give a folder holding <secret>/<key> files, e.g. ${flag} ./secrets with ./secrets/git-token/token`);
  }
  return dir;
}

/** --sandbox: bwrap, or none (the agent runs as this user, unconfined). */
export function sandboxOption(value: string | undefined): 'bwrap' | undefined {
  if (value === undefined || value === 'none') return undefined;
  if (value !== 'bwrap') throw new UsageError(`--sandbox "${value}" is not supported; write --sandbox bwrap`);
  return 'bwrap';
}
