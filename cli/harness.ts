/**
 * `paddock harness dry-run|presets`: show the exact argv a harness would run.
 */
import * as fs from 'fs';
import { Harness } from '../core/harness';
import { assertValidSpec, HarnessSpec } from '../policy/specs';
import type { CliIo } from './main';
import { UsageError } from './usage-error';

export function harnessCommand(args: string[], io: CliIo): number {
  const [sub, ...rest] = args;
  if (sub === 'presets') {
    io.stdout(Harness.presets().join('\n') + '\n');
    return 0;
  }
  if (sub !== 'dry-run') {
    throw new UsageError(`unknown harness command "${sub ?? ''}"; use "dry-run" or "presets"`);
  }
  const { positional, flags } = parseFlags(rest, ['model', 'prompt', 'prompt-file', 'workdir']);
  if (positional.length !== 1) {
    throw new UsageError(`harness dry-run takes one harness: a preset (${Harness.presets().join(', ')}) or a harness.json file`);
  }
  if (flags.prompt === undefined) {
    throw new UsageError('harness dry-run needs --prompt TEXT');
  }
  const harness = loadHarness(positional[0]);
  if (flags.model === undefined && harness.spec.defaultModel === undefined && harness.needsModel) {
    throw new UsageError(`harness "${harness.name}" has no defaultModel; pass --model`);
  }
  const argv = harness.render({ model: flags.model, prompt: flags.prompt, promptFile: flags['prompt-file'], workdir: flags.workdir });
  io.stdout(JSON.stringify(argv, null, 2) + '\n');
  return 0;
}

/** A preset name, or a harness.json file (e.g. the key of a synthesized harness ConfigMap). */
function loadHarness(ref: string): Harness {
  if (Harness.presets().includes(ref)) {
    return Harness.fromPreset(ref);
  }
  if (!fs.existsSync(ref)) {
    throw new UsageError(`"${ref}" is neither a harness preset (${Harness.presets().join(', ')}) nor a file`);
  }
  let spec: unknown;
  try {
    spec = JSON.parse(fs.readFileSync(ref, 'utf8'));
  } catch (e) {
    throw new UsageError(`${ref}: not valid JSON: ${(e as Error).message}`);
  }
  assertValidSpec('Harness', spec, ref);
  return Harness.fromSpec(spec as HarnessSpec);
}

function parseFlags(args: string[], known: string[]): { positional: string[]; flags: Record<string, string | undefined> } {
  const positional: string[] = [];
  const flags: Record<string, string | undefined> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    if (!known.includes(name)) {
      throw new UsageError(`unknown option --${name}; known: ${known.map((k) => `--${k}`).join(', ')}`);
    }
    const value = eq < 0 ? args[++i] : arg.slice(eq + 1);
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    flags[name] = value;
  }
  return { positional, flags };
}
