/**
 * `paddock harness dry-run|presets`: show the exact argv a harness would run,
 * and the presets there are.
 */
import * as fs from 'fs';
import { Harness } from '../core/harness';
import { checkPolicyShape, insertPolicyArgs, policyFor } from '../core/agent-policy';
import { insertResumeArgs, nativeResume, resumeArgs, resumeSummary, SESSION_ID_PLACEHOLDER } from '../core/resume';
import { AgentPolicySpec, assertValidSpec, HarnessSpec, PromptVia } from '../policy/specs';
import { OptionValues, UsageError } from './args';
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
  policy: { type: 'string', example: 'policy.json' },
  'allow-tool': { type: 'string', multiple: true, example: 'Read' },
  'deny-tool': { type: 'string', multiple: true, example: 'WebFetch' },
  'no-shell': { type: 'boolean' },
  'max-turns': { type: 'string', example: '20' },
  'append-system-prompt': { type: 'string', example: '"Never push."' },
  session: { type: 'boolean' },
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

Agent policy (the task's policy over the harness's; an item the CLI cannot enforce
is an error naming the CLI and the item). With any of these the output is an object:
{ "argv": [...], "files": [{ "path", "base", "format", "content" }] }, the files being
the policy's config layer, written over the harness, pool and task layers:
  --policy FILE                 a policy as JSON: { "allowedTools", "deniedTools", "shell", "maxTurns", "appendSystemPrompt" }
  --allow-tool NAME             offer only these tools (repeatable)
  --deny-tool NAME              never offer this tool (repeatable)
  --no-shell                    switch the shell tool off
  --max-turns N                 stop after N model turns
  --append-system-prompt TEXT   add TEXT to the end of the system prompt

Sessions (--session): the output is an object { "argv", "resumed", "resume", "state" }:
the argv of a session's first run and of a later one (a native resume adds its argv
before the prompt's elements; {session_id} is the id the runner picks for the session's
conversation), how the CLI resumes ("native", or "transcript" and why: the earlier
turns then come in the prompt) and the HOME paths of the conversation it keeps.
  --session                     show what a session's runs add
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
    const policy = policyOf(values);
    const plan = policy ? policyFor(harness.spec, undefined, { policy }) : undefined;
    if (plan?.problems.length) throw new UsageError(plan.problems.join('; '));
    const withPolicy = plan ? insertPolicyArgs(harness.spec.command, argv, plan.argv) : argv;
    if (values.session) {
      const native = nativeResume(harness.spec);
      const add = (restored: boolean) => (native ? insertResumeArgs(harness.spec.command, withPolicy, resumeArgs(native, SESSION_ID_PLACEHOLDER, restored)) : withPolicy);
      const out = { argv: add(false), resumed: add(true), resume: resumeSummary(harness.spec), state: native?.state ?? [], ...(plan ? { files: plan.files } : {}) };
      io.stdout(JSON.stringify(out, null, 2) + '\n');
    } else if (!plan) {
      io.stdout(JSON.stringify(argv, null, 2) + '\n');
    } else {
      io.stdout(JSON.stringify({ argv: withPolicy, files: plan.files }, null, 2) + '\n');
    }
    if (harness.promptVia === 'stdin') io.stderr('the prompt goes to the agent on stdin\n');
    return 0;
  },
};

/** The policy the flags describe (--policy FILE, then the single-item flags over it), or undefined for none. */
function policyOf(values: OptionValues<typeof DRY_RUN_OPTIONS>): AgentPolicySpec | undefined {
  let policy: AgentPolicySpec = values.policy !== undefined ? readJsonFile<AgentPolicySpec>(values.policy) : {};
  const maxTurns = values['max-turns'];
  if (maxTurns !== undefined && !/^\d+$/.test(maxTurns)) throw new UsageError(`--max-turns: must be a whole number such as 20, got "${maxTurns}"`);
  policy = {
    ...policy,
    ...(values['allow-tool'] ? { allowedTools: values['allow-tool'] } : {}),
    ...(values['deny-tool'] ? { deniedTools: [...(policy.deniedTools ?? []), ...values['deny-tool']] } : {}),
    ...(values['no-shell'] ? { shell: false } : {}),
    ...(maxTurns !== undefined ? { maxTurns: Number(maxTurns) } : {}),
    ...(values['append-system-prompt'] !== undefined ? { appendSystemPrompt: values['append-system-prompt'] } : {}),
  };
  const problems = checkPolicyShape(policy, values.policy ?? 'policy');
  if (problems.length) throw new UsageError(problems.join('; '));
  return Object.keys(policy).length ? policy : undefined;
}

function readJsonFile<T>(file: string): T {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch (e) {
    throw new UsageError(`${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `not valid JSON: ${(e as Error).message}`}`);
  }
}

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
  const spec = readJsonFile<unknown>(ref);
  assertValidSpec('Harness', spec, ref);
  return Harness.fromSpec(spec as HarnessSpec);
}
