import * as TOML from 'smol-toml';
import { loadPreset, PresetData, presetNames } from '../templates';
import type { AgentPolicySpec, ConfigFileSpec, HarnessSpec, PromptVia, ResultsSpec, ResumeSpec } from '../policy/specs';
import { checkResumeShape } from './resume';
import { checkPolicyShape, planPolicy } from './agent-policy';
import { assertValidSpec, SPEC_API_VERSION } from '../policy/specs';
import { lintCommandTemplate, promptViaOf, renderCommand, RenderValues, usesPlaceholder } from './command-template';
import { imageRef, ImageName, ImageOptions, IMAGE_NAMES } from './images';
import { MAX_RETRIES_LIMIT } from './model-providers';
import { checkDnsLabel, checkEnvMap, checkEnvName, checkImageRef, fail } from './validation';

export interface HarnessProps {
  /** Name of the harness; tasks and pools refer to it, and its ConfigMap is `harness-<name>`. */
  readonly name: string;
  /** The capability this harness provides to pools, e.g. `harness.codex`. */
  readonly capability: string;
  /** Direct argv template (no shell): placeholders {model}, {prompt}, {prompt_file}, {workdir}. */
  readonly command: string[];
  /**
   * Container image holding the runner and this CLI.
   * @default - Paddock's image for the preset; required for a custom harness
   */
  readonly image?: string;
  /**
   * Pass the prompt on stdin. Only meaningful when the command has neither {prompt} nor {prompt_file}.
   * @default - implied by the command: {prompt} → argv, {prompt_file} → file, neither → stdin
   */
  readonly promptVia?: PromptVia;
  /** @default - tasks must name a model */
  readonly defaultModel?: string;
  /** Environment for the agent process (literal values; credentials come from CredentialSecret). @default - none */
  readonly env?: Record<string, string>;
  /** The harness's (image default) config layer. @default - no files */
  readonly config?: ConfigFileSpec[];
  /** Where the final output is read before ```result blocks are extracted. @default - stdout */
  readonly results?: ResultsSpec;
  /**
   * For a CLI with no retry setting: how many failed model requests in a row (HTTP 5xx,
   * 429, no answer) the model gateway lets it retry before it answers HTTP 424, which the
   * CLI takes as final. Applies to providers reached through the gateway.
   * @default - the gateway passes every answer through
   */
  readonly gatewayMaxRetries?: number;
  /** Hostnames the agent must reach (its model provider). @default - none */
  readonly hosts?: string[];
  /** Environment variables the CLI reads credentials from (documentation and grant checks). @default - none */
  readonly credentialEnv?: string[];
  /** The default agent policy of tasks run by this harness (under the pool's and the task's). @default - none */
  readonly policy?: AgentPolicySpec;
  /**
   * How the CLI enforces each policy item (argv elements, config keys, files), or why it cannot.
   * @default - the preset's, as measured against its CLI; none for a custom harness (a policy item is then refused)
   */
  readonly policyMapping?: HarnessSpec['policyMapping'];
  /**
   * How the CLI continues a session's conversation (core/resume.ts): natively, `{ start?, argv,
   * state }` (argv added before the prompt's elements, {session_id} the conversation id, the
   * HOME-relative conversation files saved after a run and restored before the next), or
   * `{ unsupported: "why" }` (the earlier turns as a transcript in the prompt).
   * @default - the preset's, as measured against its CLI; the transcript for a custom harness
   */
  readonly resume?: ResumeSpec;
}

/** Options a preset accepts on top of its data. */
export interface HarnessPresetOptions {
  /** @default - the preset's name, e.g. "codex" */
  readonly name?: string;
  /** @default - Paddock's image for the preset */
  readonly image?: string;
  /** Registry and tag of Paddock's image (ignored when `image` is given). @default - worker-images/images.json */
  readonly imageOptions?: ImageOptions;
  /** @default - the preset's default model */
  readonly defaultModel?: string;
  /** Extra environment, merged over the preset's. @default - none */
  readonly env?: Record<string, string>;
  /** Extra config files, layered over the preset's (same path: merged by format). @default - none */
  readonly config?: ConfigFileSpec[];
  /** Extra hosts the agent must reach, e.g. a proxy in front of the provider. @default - none */
  readonly extraHosts?: string[];
  /**
   * How the prompt reaches the CLI: its own argv element, stdin, or a file the agent is told
   * to read (`{prompt_file}`; the model then sees that instruction, not the prompt). Use
   * "stdin" for prompts longer than the argv limit (about 128 KiB per element on Linux).
   * @default - "stdin" for opencode (its `run` rewrites argv elements that hold a space), "argv" for the others
   */
  readonly promptVia?: PromptVia;
  /**
   * How often the CLI retries a failed model request (HTTP 5xx, 429) before it gives up and
   * the run fails: claude `CLAUDE_CODE_MAX_RETRIES`, gemini `general.maxAttempts` (this + 1),
   * codex `request_max_retries` and `stream_max_retries` of the preset's provider. opencode and
   * copilot have no such setting: the model gateway keeps the count (`gatewayMaxRetries`), for
   * the providers whose keys it holds.
   * @default 2 (a dead provider fails the run within a minute)
   */
  readonly maxRetries?: number;
  /** The default agent policy of tasks run by this harness (under the pool's and the task's). @default - none */
  readonly policy?: AgentPolicySpec;
}

/** What the model reads in place of the prompt when the preset passes it as a file. */
export const PROMPT_FILE_INSTRUCTION = 'Your task is in the file {prompt_file}. Read all of it first, then do what it says.';
const PROMPT_VIAS: readonly PromptVia[] = ['argv', 'stdin', 'file'];

/**
 * An agent CLI as data: how to run it unattended, what it needs, and how to
 * read its results. A value object: pools that run it synthesize its
 * ConfigMap (`harness-<name>`, key `harness.json`).
 */
export class Harness {
  /** OpenAI Codex CLI (`codex exec`). */
  public static codex(options: HarnessPresetOptions = {}): Harness {
    return Harness.fromPreset('codex', options);
  }

  /** Anthropic Claude Code (`claude --print`, JSON output). */
  public static claudeCode(options: HarnessPresetOptions = {}): Harness {
    return Harness.fromPreset('claude-code', options);
  }

  /** Google Gemini CLI (`gemini --prompt --yolo`). */
  public static geminiCli(options: HarnessPresetOptions = {}): Harness {
    return Harness.fromPreset('gemini-cli', options);
  }

  /** opencode (`opencode run`). */
  public static opencode(options: HarnessPresetOptions = {}): Harness {
    return Harness.fromPreset('opencode', options);
  }

  /** GitHub Copilot CLI (`copilot --prompt --allow-all-tools`). */
  public static copilot(options: HarnessPresetOptions = {}): Harness {
    return Harness.fromPreset('copilot', options);
  }

  /** A harness from its spec, e.g. the harness.json of a synthesized ConfigMap. */
  public static fromSpec(spec: HarnessSpec): Harness {
    assertValidSpec('Harness', spec, `Harness "${spec?.name ?? ''}"`);
    return new Harness({ ...spec, config: spec.config?.files });
  }

  /** The names `fromPreset` accepts. */
  public static presets(): string[] {
    return presetNames();
  }

  /** A preset by name: codex, claude-code, gemini-cli, opencode, copilot. */
  public static fromPreset(preset: string, options: HarnessPresetOptions = {}): Harness {
    const loaded = loadPreset(preset);
    if (!loaded) {
      fail(`Harness preset "${preset}" does not exist; use one of ${presetNames().map((p) => `"${p}"`).join(', ')}`);
    }
    const { data, files } = loaded;
    const where = `Harness "${options.name ?? data.name}"`;
    const image = options.image ?? (IMAGE_NAMES.includes(data.image as ImageName) ? imageRef(data.image as ImageName, options.imageOptions) : undefined);
    const retries = presetRetries(data, options.maxRetries, where);
    return new Harness({
      name: options.name ?? data.name,
      capability: data.capability,
      command: [...data.command, ...presetPromptArgs(data, options.promptVia, where)],
      image,
      defaultModel: options.defaultModel ?? data.defaultModel,
      env: { ...data.env, ...retries.env, ...options.env },
      config: [
        ...data.config.map((f) => ({ path: f.path, base: f.base ?? 'home', format: f.format, content: files[f.file] })),
        ...retries.config,
        ...(options.config ?? []),
      ],
      results: data.results,
      ...(retries.gateway !== undefined ? { gatewayMaxRetries: retries.gateway } : {}),
      hosts: [...data.hosts, ...(options.extraHosts ?? [])],
      credentialEnv: data.credentialEnv,
      policy: options.policy,
      policyMapping: data.policyMapping,
      resume: data.resume,
    });
  }

  public readonly name: string;
  public readonly capability: string;
  public readonly image: string;
  public readonly promptVia: PromptVia;
  public readonly hosts: readonly string[];
  public readonly credentialEnv: readonly string[];
  /** The harness spec, exactly as written to its ConfigMap and read by the runner. */
  public readonly spec: HarnessSpec;

  constructor(props: HarnessProps) {
    const where = `Harness "${props?.name ?? ''}"`;
    this.name = checkDnsLabel(props.name, `${where}: name`);
    if (typeof props.capability !== 'string' || !/^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$/.test(props.capability) || props.capability.length > 63) {
      fail(`${where}: capability "${props.capability ?? ''}" is invalid; write lower-case letters, digits, '-', '_' and '.', e.g. "harness.${this.name}"`);
    }
    this.capability = props.capability;
    if (!Array.isArray(props.command)) {
      fail(`${where}: command must be an argv array such as ["codex", "exec", "{prompt}"], not a shell string`);
    }
    const problems = lintCommandTemplate(props.command, `${where}: command`);
    if (problems.length > 0) {
      fail(problems.join('\n'));
    }
    const implied = promptViaOf(props.command);
    if (props.promptVia && props.promptVia !== implied) {
      fail(
        `${where}: promptVia "${props.promptVia}" disagrees with the command, which implies "${implied}"; ` +
          'use {prompt} for argv, {prompt_file} for a file, or neither for stdin',
      );
    }
    this.promptVia = implied;
    if (!props.image) {
      fail(`${where}: image is required for a custom harness: an image with the paddock runner and the CLI "${props.command[0]}"`);
    }
    this.image = checkImageRef(props.image, `${where}: image`);
    if (props.defaultModel !== undefined && !props.defaultModel.trim()) {
      fail(`${where}: defaultModel must not be empty; leave it out to make every task name its model`);
    }
    const env = checkEnvMap(props.env, `${where}: env`);
    (props.credentialEnv ?? []).forEach((name, i) => checkEnvName(name, `${where}: credentialEnv[${i}]`));
    const results = props.results ?? { from: 'stdout' };
    if (results.from === 'json-field' && !results.field) {
      fail(`${where}: results.field is required with results.from "json-field", e.g. { from: "json-field", field: "result" }`);
    }
    if (results.from === 'file' && !results.path) {
      fail(`${where}: results.path is required with results.from "file", e.g. { from: "file", path: ".agent/last-message.txt" }`);
    }
    (props.hosts ?? []).forEach((host, i) => {
      if (typeof host !== 'string' || !host.trim()) {
        fail(`${where}: hosts[${i}] must be a hostname such as "api.openai.com"`);
      }
    });
    const gatewayMaxRetries = props.gatewayMaxRetries;
    if (gatewayMaxRetries !== undefined && (!Number.isInteger(gatewayMaxRetries) || gatewayMaxRetries < 0 || gatewayMaxRetries > MAX_RETRIES_LIMIT)) {
      fail(`${where}: gatewayMaxRetries must be a whole number from 0 to ${MAX_RETRIES_LIMIT} (retries of a failed model request the model gateway lets through), e.g. 2; got ${JSON.stringify(gatewayMaxRetries)}`);
    }
    this.hosts = [...new Set(props.hosts ?? [])];
    this.credentialEnv = [...(props.credentialEnv ?? [])];
    const policyProblems = checkPolicyShape(props.policy, `${where}: policy`);
    if (policyProblems.length) fail(policyProblems.join('\n'));
    const homeConfig = (props.config ?? []).filter((f) => (f.base ?? 'home') === 'home').map((f) => f.path);
    const resumeProblems = checkResumeShape(props.resume, `${where}: resume`, homeConfig);
    if (resumeProblems.length) fail(resumeProblems.join('\n'));

    this.spec = {
      apiVersion: SPEC_API_VERSION,
      kind: 'Harness',
      name: this.name,
      capability: this.capability,
      image: this.image,
      command: [...props.command],
      promptVia: this.promptVia,
      ...(props.defaultModel ? { defaultModel: props.defaultModel } : {}),
      ...(Object.keys(env).length ? { env } : {}),
      ...(props.config?.length ? { config: { files: props.config.map((f) => ({ base: 'home', format: 'text', ...f })) } } : {}),
      results: { ...results },
      ...(gatewayMaxRetries !== undefined ? { gatewayMaxRetries } : {}),
      ...(this.hosts.length ? { hosts: [...this.hosts] } : {}),
      ...(this.credentialEnv.length ? { credentialEnv: [...this.credentialEnv] } : {}),
      ...(props.policy && Object.keys(props.policy).length ? { policy: props.policy } : {}),
      ...(props.policyMapping ? { policyMapping: props.policyMapping } : {}),
      ...(props.resume ? { resume: props.resume } : {}),
    } as HarnessSpec;
    assertValidSpec('Harness', this.spec, where);
    const unenforceable = planPolicy(this.spec, this.spec.policy ?? {}).problems;
    if (unenforceable.length) fail(unenforceable.map((p) => `${where}: ${p}`).join('\n'));
  }

  /** Whether the command needs a model, i.e. uses {model}. */
  public get needsModel(): boolean {
    return usesPlaceholder(this.spec.command, 'model');
  }

  /**
   * The exact argv the runner will exec for these values (a dry run).
   * `model` defaults to the harness's defaultModel.
   */
  public render(values: Partial<RenderValues> & { readonly prompt: string }): string[] {
    const model = values.model ?? this.spec.defaultModel;
    if (model === undefined && this.needsModel) {
      fail(`Harness "${this.name}": render needs a model (the harness has no defaultModel)`);
    }
    return renderCommand(this.spec.command, {
      model: model ?? '',
      prompt: values.prompt,
      promptFile: values.promptFile ?? (this.promptVia === 'file' ? '/tmp/paddock/prompt.txt' : undefined),
      workdir: values.workdir ?? '/workspace',
    });
  }
}

/** The preset's prompt elements for `promptVia` (file: the argv elements with an instruction naming the file). */
function presetPromptArgs(data: PresetData, promptVia: PromptVia | undefined, where: string): string[] {
  const via = promptVia ?? data.prompt.default;
  if (!PROMPT_VIAS.includes(via)) {
    fail(`${where}: promptVia must be ${PROMPT_VIAS.map((v) => `"${v}"`).join(', ')}; got ${JSON.stringify(via)}. Use "stdin" or "file" for prompts longer than the argv limit`);
  }
  if (via === 'file') return data.prompt.argv.map((arg) => arg.replace('{prompt}', PROMPT_FILE_INSTRUCTION));
  return [...data.prompt[via]];
}

/**
 * The env and config entries that set the CLI's retry count, or for a CLI without one the
 * count the model gateway keeps. The preset's own files already hold the default, so only
 * another count adds anything (a config entry for the same path, merged over the preset's
 * by the runner).
 */
function presetRetries(data: PresetData, maxRetries: number | undefined, where: string): { env: Record<string, string>; config: ConfigFileSpec[]; gateway?: number } {
  const none = { env: {}, config: [] };
  const knob = data.maxRetries;
  if (maxRetries === undefined) return 'gateway' in knob ? { ...none, gateway: knob.default } : none;
  if (!Number.isInteger(maxRetries) || maxRetries < 0 || maxRetries > MAX_RETRIES_LIMIT) {
    fail(`${where}: maxRetries must be a whole number from 0 to ${MAX_RETRIES_LIMIT} (retries of a failed model request), e.g. ${knob.default}; got ${JSON.stringify(maxRetries)}`);
  }
  if ('gateway' in knob) return { ...none, gateway: maxRetries };
  if (maxRetries === knob.default) return none;
  if ('env' in knob) return { env: { [knob.env]: String(maxRetries) }, config: [] };
  const file = data.config.find((f) => f.file === knob.config.file)!;
  const value: Record<string, unknown> = {};
  for (const keys of knob.config.keys) {
    let at = value;
    keys.slice(0, -1).forEach((k) => (at = (at[k] ??= {}) as Record<string, unknown>));
    at[keys[keys.length - 1]] = maxRetries + (knob.config.add ?? 0);
  }
  const content = `${(file.format === 'toml' ? TOML.stringify(value) : JSON.stringify(value, null, 2)).trimEnd()}\n`;
  return { env: {}, config: [{ path: file.path, base: file.base ?? 'home', format: file.format, content }] };
}
