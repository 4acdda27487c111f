/**
 * Config layers: harness (image default) < pool < task. Files are keyed by (base, path);
 * json and toml layers of one file deep-merge object by object (a later layer wins,
 * arrays are replaced whole), text is replaced whole, and a later layer with a
 * different format replaces the file. Everything is parsed and merged before any side
 * effect (`planConfigFiles`), then written once the workspace exists (`writeConfigFiles`).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as TOML from 'smol-toml';
import type { ConfigFileSpec, ConfigLayerSpec } from '../policy/specs';
import { RunFailure } from './status';

export type ConfigBase = 'home' | 'workdir';
export type ConfigFormat = 'json' | 'toml' | 'text';

export interface NamedLayer {
  /** e.g. `harness "codex"`, used in messages. */
  readonly label: string;
  readonly layer?: ConfigLayerSpec;
  /** Keys of json/toml files this layer sets whole: what lower layers put there is dropped first. */
  readonly replaceKeys?: readonly ConfigKeyRef[];
}

/** A key of a json/toml config file. */
export interface ConfigKeyRef {
  readonly base: ConfigBase;
  readonly path: string;
  readonly key: readonly string[];
}

export interface PlannedConfigFile {
  readonly base: ConfigBase;
  readonly path: string;
  readonly format: ConfigFormat;
  /** The final file content. */
  readonly content: string;
  /** Which layers contributed, lowest first. */
  readonly from: string[];
}

interface Acc {
  base: ConfigBase;
  path: string;
  format: ConfigFormat;
  /** Parsed value for json/toml; the text for text. */
  value: unknown;
  /** Content of the only layer so far (kept verbatim, comments and all, when nothing merges). */
  verbatim?: string;
  from: string[];
}

export function planConfigFiles(layers: readonly NamedLayer[]): PlannedConfigFile[] {
  const files = new Map<string, Acc>();
  for (const { label, layer, replaceKeys } of layers) {
    (layer?.files ?? []).forEach((f, i) => {
      const base = f.base ?? 'home';
      const format = f.format ?? 'text';
      const key = `${base}\0${path.posix.normalize(f.path)}`;
      const value = parseContent(f, format, `${label} config.files[${i}] (${base}/${f.path})`);
      const prev = files.get(key);
      if (prev && prev.format === format && format !== 'text') {
        for (const r of replaceKeys ?? []) {
          if (r.base === base && path.posix.normalize(r.path) === path.posix.normalize(f.path)) prev.value = withoutKey(prev.value, r.key);
        }
        prev.value = deepMerge(prev.value, value);
        prev.verbatim = undefined;
        prev.from.push(label);
      } else {
        files.set(key, { base, path: f.path, format, value, verbatim: f.content, from: [...(prev?.from ?? []), label] });
      }
    });
  }
  return [...files.values()].map((a) => ({
    base: a.base,
    path: a.path,
    format: a.format,
    content: a.verbatim ?? serialize(a.format, a.value),
    from: a.from,
  }));
}

/** Write the planned files; returns the absolute paths written. */
export function writeConfigFiles(files: readonly PlannedConfigFile[], dirs: Readonly<Record<ConfigBase, string>>): string[] {
  return files.map((f) => {
    const target = safeJoin(dirs[f.base], f.path);
    writeFileReplacingLinks(target, f.content, 0o644);
    return target;
  });
}

/**
 * Join base and a relative path, refusing results that escape base through a
 * symlinked directory (a fetched repository could hold one). Checked before any
 * directory is created, so not even an empty directory lands outside.
 */
export function safeJoin(base: string, relative: string): string {
  const target = path.join(base, relative);
  const parent = path.dirname(target);
  if (!resolveInside(base, path.relative(base, parent))) {
    throw new RunFailure('source_failed', `refusing to write ${target}: its directory resolves outside ${base} (a symlink, e.g. in a fetched repository)`);
  }
  fs.mkdirSync(parent, { recursive: true, mode: 0o700 });
  return target;
}

/**
 * The real path of base/relative when it stays inside base's real path (symlinks
 * followed as far as the path exists), else undefined. The part that does not exist
 * yet holds no symlink.
 */
export function resolveInside(base: string, relative: string): string | undefined {
  const realBase = fs.realpathSync(base);
  const missing: string[] = [];
  let existing = path.resolve(base, relative);
  for (;;) {
    try {
      const real = path.join(fs.realpathSync(existing), ...missing);
      return real === realBase || real.startsWith(realBase + path.sep) ? real : undefined;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
      if (existing === path.dirname(existing)) return undefined;
      missing.unshift(path.basename(existing));
      existing = path.dirname(existing);
    }
  }
}

/** Write a file, replacing (not following) a symlink or read-only file already there. */
export function writeFileReplacingLinks(target: string, content: string, mode: number): void {
  try {
    const st = fs.lstatSync(target);
    if (st.isDirectory()) throw new RunFailure('internal_error', `cannot write ${target}: it is a directory`);
    fs.unlinkSync(target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  fs.writeFileSync(target, content, { mode, flag: 'wx' });
  fs.chmodSync(target, mode); // the umask must not widen or narrow it
}

function parseContent(f: ConfigFileSpec, format: ConfigFormat, where: string): unknown {
  try {
    if (format === 'json') return JSON.parse(f.content);
    if (format === 'toml') return TOML.parse(f.content);
  } catch (err) {
    throw new RunFailure('invalid_spec', `${where}: content is not valid ${format.toUpperCase()}: ${firstLine((err as Error).message)}`, [
      `${where}: content is not valid ${format.toUpperCase()}`,
    ]);
  }
  return f.content;
}

function serialize(format: ConfigFormat, value: unknown): string {
  if (format === 'json') return JSON.stringify(value, null, 2) + '\n';
  if (format === 'toml') return TOML.stringify(value as Record<string, unknown>).replace(/\n*$/, '\n');
  return String(value);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Objects merge key by key; anything else (arrays, scalars, dates) is replaced by the later layer. */
export function deepMerge(lower: unknown, upper: unknown): unknown {
  if (!isPlainObject(lower) || !isPlainObject(upper)) return upper;
  const out: Record<string, unknown> = {};
  // defineProperty, so a key named "__proto__" stays data and never becomes a prototype.
  const set = (k: string, v: unknown): void => {
    Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  };
  for (const [k, v] of Object.entries(lower)) set(k, v);
  for (const [k, v] of Object.entries(upper)) {
    set(k, Object.prototype.hasOwnProperty.call(lower, k) ? deepMerge(lower[k], v) : v);
  }
  return out;
}

/** A copy of `value` without `key` (objects on the way copied, nothing else touched). */
function withoutKey(value: unknown, key: readonly string[]): unknown {
  if (!isPlainObject(value) || !key.length || !Object.prototype.hasOwnProperty.call(value, key[0])) return value;
  const out = deepMerge({}, value) as Record<string, unknown>;
  if (key.length === 1) delete out[key[0]];
  else out[key[0]] = withoutKey(value[key[0]], key.slice(1));
  return out;
}

function firstLine(s: string): string {
  return s.split('\n')[0];
}
