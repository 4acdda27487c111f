/**
 * `paddock harness dry-run|presets`: show the exact argv a harness would run,
 * and the presets there are.
 */
import * as fs from 'fs';
import { Harness } from '../core/harness';
import { assertValidSpec, HarnessSpec, PromptVia } from '../policy/specs';
import { UsageError } from './args';
import type { Command } from './main';

const PRESETS_USAGE = `Usage: paddock harness presets [--json]

Lists the harness presets, one name per line (--json: an array of objects with
each preset's name, capability, command, default model and image).
`;

export const presetsCommand: Command<{ json: { type: 'boolean' } }> = {
  usage: PRESETS_USAGE,
  options: { json: { type: 'boolean' } },
  run: (line, io) => {
    if (!line.values.json) {
      io.stdout(Harness.presets().join('\n') + '\n');
      return 0;
    }
    const presets = Harness.presets().map((name) => {
      const { spec } = Harness.fromPreset(name);
      return { name, capability: spec.capability, command: spec.command, promptVia: spec.promptVia, defaultModel: spec.defaultModel, image: spec.image };
    });
    io.stdout(JSON.stringify(presets, null, 2) + '\n');
    return 0;
  },
};

const DRY_RUN_OPTIONS = {
  model: { type: 'string', example: 'gpt-5-mini' },
  prompt: { type: 'string', example: '"Fix the tests"' },
  'prompt-file': { type: 'string', example: '/tmp/paddock/prompt.txt' },
  'prompt-via': { type: 'string', example: 'stdin' },
  workdir: { type: 'string', example: '/workspace/repo' },
} as const;

export const dryRunCommand: Command<typeof DRY_RUN_OPTIONS> = {
  usage: `Usage: paddock harness dry-run <preset|harness.json> --prompt TEXT [options]

Prints the exact argv the runner would exec for this harness, as a JSON array
(one element per argv entry; no shell is involved).

Options:
  --prompt TEXT        the task's prompt (required)
  --model M            the model [default: the harness's defaultModel]
  --prompt-via HOW     a preset's promptVia: argv, stdin or file [default: the preset's]
  --prompt-file PATH   where {prompt_file} points [default /tmp/paddock/prompt.txt]
  --workdir DIR        the agent's working directory [default /workspace]
  -h, --help           this text
`,
  options: DRY_RUN_OPTIONS,
  maxPositionals: 1,
  run: (line, io) => {
    const { values, positionals } = line;
    if (positionals.length !== 1) {
      throw new UsageError(`takes one harness: a preset (${Harness.presets().join(', ')}) or a harness.json file`);
    }
    if (values.prompt === undefined) {
      throw new UsageError('needs --prompt TEXT');
    }
    const harness = loadHarness(positionals[0], values['prompt-via']);
    if (values.model === undefined && harness.spec.defaultModel === undefined && harness.needsModel) {
      throw new UsageError(`harness "${harness.name}" has no defaultModel; pass --model`);
    }
    const argv = harness.render({ model: values.model, prompt: values.prompt, promptFile: values['prompt-file'], workdir: values.workdir });
    io.stdout(JSON.stringify(argv, null, 2) + '\n');
    if (harness.promptVia === 'stdin') io.stderr('the prompt goes to the agent on stdin\n');
    return 0;
  },
};

/** A preset name (with its promptVia option), or a harness.json file (e.g. the key of a synthesized harness ConfigMap). */
function loadHarness(ref: string, promptVia: string | undefined): Harness {
  if (Harness.presets().includes(ref)) {
    return Harness.fromPreset(ref, { promptVia: promptVia as PromptVia | undefined });
  }
  if (promptVia !== undefined) {
    throw new UsageError(`--prompt-via applies to a preset; the command of ${ref} already decides how the prompt travels`);
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
