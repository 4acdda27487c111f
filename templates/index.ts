/**
 * Preset data for the harnesses and their default config layers. Kept as
 * plain files so the worker images bake in exactly the same defaults.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { HarnessSpec } from '../policy/specs';

export interface PresetConfigFile {
  readonly path: string;
  readonly format: 'json' | 'toml' | 'text';
  readonly base?: 'home' | 'workdir';
  /** File next to harness.json that holds the content. */
  readonly file: string;
}

/** The argv elements that carry the prompt, appended to `command`, per way of passing it. */
export interface PresetPromptData {
  /** How the preset passes the prompt unless told otherwise. */
  readonly default: 'argv' | 'stdin';
  /** With {prompt}; the file mode uses the same elements with an instruction that names {prompt_file}. */
  readonly argv: string[];
  /** What the CLI needs to read the prompt from stdin (e.g. codex's "-"), often nothing. */
  readonly stdin: string[];
}

/** Where the CLI's own retry count is set, or why it cannot be. */
export type PresetRetriesData =
  | { readonly default: number; readonly env: string }
  | {
      readonly default: number;
      /** Keys of a json/toml config file of the preset, set to the count plus `add`. */
      readonly config: { readonly file: string; readonly keys: string[][]; readonly add?: number };
    }
  /**
   * The CLI has no retry setting: the model gateway caps its retries (the harness's
   * gatewayMaxRetries); `note` says what the CLI does on its own, without the gateway.
   */
  | { readonly default: number; readonly gateway: { readonly note: string } };

export interface PresetData {
  readonly name: string;
  readonly capability: string;
  /** Image name in worker-images/images.json. */
  readonly image: string;
  /** The npm package that provides the CLI, for "not on PATH" messages. */
  readonly package: string;
  /** The argv without the prompt (see `prompt`). */
  readonly command: string[];
  readonly prompt: PresetPromptData;
  readonly maxRetries: PresetRetriesData;
  readonly defaultModel: string;
  readonly env: Record<string, string>;
  readonly config: PresetConfigFile[];
  readonly results: { from: 'stdout' | 'json-field' | 'file'; field?: string; path?: string };
  readonly hosts: string[];
  readonly credentialEnv: string[];
  /** How the CLI enforces each agent-policy item, as measured against it (harness.schema.json policyMapping). */
  readonly policyMapping: HarnessSpec['policyMapping'];
  /** How the CLI continues a session's conversation, as measured against it (harness.schema.json resume). */
  readonly resume: NonNullable<HarnessSpec['resume']>;
}

/** From source (ts-jest) templates/ is this folder; from lib/templates/ it is two levels up. */
export const TEMPLATES_DIR = [__dirname, path.join(__dirname, '..', '..', 'templates')].find((dir) =>
  fs.existsSync(path.join(dir, 'harnesses')),
) as string;

const cache = new Map<string, { data: PresetData; files: Record<string, string> }>();

export function presetNames(): string[] {
  return fs
    .readdirSync(path.join(TEMPLATES_DIR, 'harnesses'))
    .filter((name) => fs.existsSync(path.join(TEMPLATES_DIR, 'harnesses', name, 'harness.json')))
    .sort();
}

/** The preset's data and the contents of its config files, or undefined for an unknown preset. */
export function loadPreset(name: string): { data: PresetData; files: Record<string, string> } | undefined {
  if (!cache.has(name)) {
    if (!presetNames().includes(name)) {
      return undefined;
    }
    const dir = path.join(TEMPLATES_DIR, 'harnesses', name);
    const data = JSON.parse(fs.readFileSync(path.join(dir, 'harness.json'), 'utf8')) as PresetData;
    const files: Record<string, string> = {};
    for (const file of data.config) {
      files[file.file] = fs.readFileSync(path.join(dir, file.file), 'utf8');
    }
    cache.set(name, { data, files });
  }
  return cache.get(name);
}

/** The preset whose command runs `program` (e.g. "opencode"), to say where a missing CLI comes from. */
export function presetOfProgram(program: string): PresetData | undefined {
  return presetNames()
    .map((name) => loadPreset(name)!.data)
    .find((data) => data.command[0] === program);
}
