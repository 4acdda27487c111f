import * as TOML from 'smol-toml';
import { Harness, lintCommandTemplate, PROMPT_FILE_INSTRUCTION, renderCommand } from '../../constructs';
import { validateSpec } from '../../policy/specs';
import { planConfigFiles } from '../../runner/config-layers';
import { loadPreset } from '../../templates';

describe('Harness command template lint', () => {
  const lint = (command: string[]) => lintCommandTemplate(command, 'command');

  test('single-brace known placeholders pass', () => {
    expect(lint(['agent', '--model', '{model}', '--cwd={workdir}', '{prompt}'])).toEqual([]);
    expect(lint(['agent', '--prompt-file', '{prompt_file}'])).toEqual([]);
  });
  test('double braces are an error that says how to write it', () => {
    expect(lint(['agent', '{{prompt}}'])).toEqual(['command[1]: "{{prompt}}" uses double braces; placeholders take single braces, write "{prompt}"']);
  });
  test('unknown placeholders are an error listing the known ones', () => {
    expect(lint(['agent', '{promt}'])).toEqual(['command[1]: unknown placeholder "{promt}"; use one of {model}, {prompt}, {prompt_file}, {workdir}']);
  });
  test('JSON-looking braces are not placeholders', () => {
    expect(lint(['agent', '--config={"a":1}'])).toEqual([]);
  });
  test('{prompt} inside a shell string is an error that says to give it its own argv element', () => {
    const problems = lint(['sh', '-lc', 'codex exec "{prompt}"']);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^command\[2\]: \{prompt\} inside a shell string \(sh -lc "..."\).*give \{prompt\} its own argv element/);
    expect(lint(['/bin/bash', '-c', 'agent {prompt}'])[0]).toMatch(/inside a shell string/);
  });
  test('the program itself cannot be a placeholder, and the prompt goes one way', () => {
    expect(lint(['{model}'])).toContain('command[0]: the program to run must be a fixed name, not a placeholder');
    expect(lint(['a', '{prompt}', '{prompt_file}'])).toContain('command: uses both {prompt} and {prompt_file}; pass the prompt one way');
  });
  test('an empty command is an error', () => {
    expect(lint([])[0]).toMatch(/must have at least one element/);
  });
  test('Harness construction throws the lint messages', () => {
    expect(() => new Harness({ name: 'x', capability: 'harness.x', image: 'i', command: ['sh', '-c', 'x {prompt}'] })).toThrow(/inside a shell string/);
    expect(() => new Harness({ name: 'x', capability: 'harness.x', image: 'i', command: ['x', '{{model}}'] })).toThrow(/double braces/);
  });
});

describe('rendering', () => {
  test('a prompt with quotes, newlines and $(...) stays one argv element, byte for byte', () => {
    const prompt = `Fix "it" 'now'\n$(rm -rf /) \`x\` {model} ; | &&`;
    const argv = Harness.codex().render({ model: 'm', prompt });
    expect(argv[argv.length - 1]).toBe(prompt);
    expect(argv.filter((a) => a === prompt)).toHaveLength(1);
  });
  test('a placeholder without a value is an error', () => {
    expect(() => renderCommand(['a', '{prompt_file}'], { model: 'm', prompt: 'p' })).toThrow('the command uses {prompt_file} but no value for it was given');
  });
  test('promptVia follows the template', () => {
    const base = { capability: 'harness.x', image: 'i' };
    expect(new Harness({ ...base, name: 'a', command: ['x', '{prompt}'] }).promptVia).toBe('argv');
    expect(new Harness({ ...base, name: 'b', command: ['x', '-f', '{prompt_file}'] }).promptVia).toBe('file');
    expect(new Harness({ ...base, name: 'c', command: ['x'] }).promptVia).toBe('stdin');
    expect(() => new Harness({ ...base, name: 'd', command: ['x'], promptVia: 'argv' })).toThrow(/promptVia "argv" disagrees with the command, which implies "stdin"/);
  });
});

describe('presets', () => {
  test.each(Harness.presets())('%s is a valid, unattended harness spec', (preset) => {
    const harness = Harness.fromPreset(preset);
    expect(validateSpec('Harness', harness.spec)).toEqual([]);
    expect(harness.promptVia).toBe(preset === 'opencode' ? 'stdin' : 'argv');
    expect(harness.hosts.length).toBeGreaterThan(0);
    expect(harness.image).toMatch(new RegExp(`/paddock-${preset}:`));
    // A prompt that starts with "-" must not be parsed as an option: it follows "--", or is
    // attached as --prompt=VALUE (measured: gemini and copilot take "--prompt -x" for a flag).
    const argv = Harness.fromPreset(preset, { promptVia: 'argv' }).render({ prompt: '--help me' });
    const at = argv.findIndex((a) => a.endsWith('--help me'));
    expect(argv[at] === '--help me' ? argv[at - 1] : argv[at]).toMatch(/^--$|^--[a-z-]+=--help me$/);
  });

  test('codex runs with the pod as its sandbox and never asks for approval', () => {
    const codex = Harness.codex();
    const config = codex.spec.config!.files!.find((f) => f.path === '.codex/config.toml')!;
    expect(config.format).toBe('toml');
    expect(config.content).toMatch(/^sandbox_mode = "danger-full-access"$/m);
    expect(config.content).toMatch(/^approval_policy = "never"$/m);
    expect(codex.spec.command).toContain('--dangerously-bypass-approvals-and-sandbox');
  });

  test('claude code reads its answer from the JSON output and runs without permission prompts', () => {
    const claude = Harness.claudeCode();
    expect(claude.spec.results).toEqual({ from: 'json-field', field: 'result' });
    expect(claude.spec.command).toEqual(expect.arrayContaining(['--dangerously-skip-permissions', '--output-format', 'json']));
    expect(claude.spec.env).toMatchObject({ CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1' });
  });

  test('preset options override name, model, image and add env and config', () => {
    const h = Harness.codex({ name: 'codex-mini', defaultModel: 'gpt-5-mini', image: 'registry.example/codex:1', env: { RUST_LOG: 'warn' } });
    expect(h.spec).toMatchObject({ name: 'codex-mini', defaultModel: 'gpt-5-mini', image: 'registry.example/codex:1', env: { RUST_LOG: 'warn' } });
    expect(Harness.codex({ imageOptions: { registry: 'reg.internal/', tag: 'dev' } }).image).toBe('reg.internal/paddock-codex:dev');
  });

  test('opencode takes the prompt on stdin: its `run` rewrites argv elements that hold a space', () => {
    const opencode = Harness.opencode();
    expect(opencode.spec.promptVia).toBe('stdin');
    expect(opencode.render({ prompt: 'Fix "it"' })).toEqual(['opencode', 'run', '--model', 'openai/gpt-5']);
  });

  describe.each(Harness.presets())('%s: promptVia', (preset) => {
    const prompt = 'Fix "it" now';
    test('argv: the prompt is one argv element', () => {
      const h = Harness.fromPreset(preset, { promptVia: 'argv' });
      expect(h.spec.promptVia).toBe('argv');
      expect(h.render({ prompt }).filter((a) => a.endsWith(prompt))).toHaveLength(1);
    });
    test('stdin: no argv element carries the prompt', () => {
      const h = Harness.fromPreset(preset, { promptVia: 'stdin' });
      expect(h.spec.promptVia).toBe('stdin');
      expect(h.render({ prompt }).some((a) => a.includes('Fix'))).toBe(false);
      expect(validateSpec('Harness', h.spec)).toEqual([]);
    });
    test('file: the argv tells the agent which file holds the task', () => {
      const h = Harness.fromPreset(preset, { promptVia: 'file' });
      expect(h.spec.promptVia).toBe('file');
      const argv = h.render({ prompt, promptFile: '/tmp/p/prompt.md' });
      expect(argv.some((a) => a.includes('Fix'))).toBe(false);
      expect(argv.filter((a) => a.endsWith(PROMPT_FILE_INSTRUCTION.replace('{prompt_file}', '/tmp/p/prompt.md')))).toHaveLength(1);
    });
  });

  test('a bad promptVia names the field and the choices', () => {
    expect(() => Harness.codex({ promptVia: 'tty' as 'argv' })).toThrow(/^Harness "codex": promptVia must be "argv", "stdin", "file"; got "tty"\. Use "stdin" or "file" for prompts longer than the argv limit$/);
  });

  // The preset's own files hold the default count, so the images bake the same layer.
  test.each([
    ['claude-code', (h: Harness) => [Number(h.spec.env!.CLAUDE_CODE_MAX_RETRIES)]],
    ['gemini-cli', (h: Harness) => [configOf(h, '.gemini/settings.json').general.maxAttempts - 1]],
    ['codex', (h: Harness) => ['request_max_retries', 'stream_max_retries'].map((k) => configOf(h, '.codex/config.toml').model_providers['paddock-openai'][k])],
  ] as const)('%s caps its retries at 2 by default and at maxRetries when given', (preset, retriesOf) => {
    expect(retriesOf(Harness.fromPreset(preset))).toEqual(retriesOf(Harness.fromPreset(preset)).map(() => 2));
    expect(retriesOf(Harness.fromPreset(preset, { maxRetries: 2 })).every((n) => n === 2)).toBe(true);
    expect(retriesOf(Harness.fromPreset(preset, { maxRetries: 0 })).every((n) => n === 0)).toBe(true);
    expect(retriesOf(Harness.fromPreset(preset, { maxRetries: 7 })).every((n) => n === 7)).toBe(true);
    expect(Harness.fromPreset(preset).spec).toEqual(Harness.fromPreset(preset, { maxRetries: 2 }).spec);
    expect(loadPreset(preset)!.data.maxRetries).toMatchObject({ default: 2 });
  });

  test('another maxRetries keeps the rest of the preset file', () => {
    const codex = configOf(Harness.codex({ maxRetries: 5 }), '.codex/config.toml');
    expect(codex).toMatchObject({ sandbox_mode: 'danger-full-access', model_provider: 'paddock-openai' });
    expect(codex.model_providers['paddock-openai']).toMatchObject({ base_url: 'https://api.openai.com/v1', request_max_retries: 5, stream_max_retries: 5 });
    expect(configOf(Harness.geminiCli({ maxRetries: 5 }), '.gemini/settings.json')).toMatchObject({ security: { folderTrust: { enabled: false } }, general: { maxAttempts: 6, enableAutoUpdate: false } });
  });

  test.each<[string, unknown]>([['-1', -1], ['2.5', 2.5], ['11', 11], ['"3"', '3'], ['NaN', NaN]])('maxRetries %s is an error that says what to write', (_, value) => {
    expect(() => Harness.claudeCode({ maxRetries: value as number })).toThrow(/^Harness "claude-code": maxRetries must be a whole number from 0 to 10 \(retries of a failed model request\), e\.g\. 2; got /);
  });

  test('opencode and copilot have no retry setting: the model gateway keeps maxRetries (gatewayMaxRetries, 2 by default)', () => {
    for (const preset of ['opencode', 'copilot']) {
      expect(Harness.fromPreset(preset).spec.gatewayMaxRetries).toBe(2);
      expect(Harness.fromPreset(preset, { maxRetries: 0 }).spec.gatewayMaxRetries).toBe(0);
      expect(Harness.fromPreset(preset, { maxRetries: 7 }).spec.gatewayMaxRetries).toBe(7);
      expect(Harness.fromPreset(preset, { maxRetries: 7 }).spec.env).toEqual(Harness.fromPreset(preset).spec.env);
      expect(loadPreset(preset)!.data.maxRetries).toMatchObject({ default: 2, gateway: { note: expect.stringMatching(/has no setting for its retry count: on its own it retries 5 times/) } });
    }
    expect(() => Harness.opencode({ maxRetries: 11 })).toThrow(/^Harness "opencode": maxRetries must be a whole number from 0 to 10 \(retries of a failed model request\), e\.g\. 2; got 11$/);
    // The CLIs with their own setting leave the gateway out of it.
    for (const preset of ['codex', 'claude-code', 'gemini-cli']) expect(Harness.fromPreset(preset).spec.gatewayMaxRetries).toBeUndefined();
  });

  test('a custom harness may set gatewayMaxRetries; a bad count names the field and the range', () => {
    const props = { name: 'mine', capability: 'harness.mine', command: ['mine', '{prompt}'], image: 'registry.example/mine:1' };
    expect(new Harness({ ...props, gatewayMaxRetries: 1 }).spec.gatewayMaxRetries).toBe(1);
    expect(() => new Harness({ ...props, gatewayMaxRetries: -1 })).toThrow(
      /^Harness "mine": gatewayMaxRetries must be a whole number from 0 to 10 \(retries of a failed model request the model gateway lets through\), e\.g\. 2; got -1$/,
    );
    expect(() => Harness.fromSpec({ ...new Harness(props).spec, gatewayMaxRetries: 11 })).toThrow(/gatewayMaxRetries/);
  });

  test('fromSpec round-trips a synthesized harness.json', () => {
    const spec = Harness.geminiCli().spec;
    expect(Harness.fromSpec(JSON.parse(JSON.stringify(spec))).spec).toEqual(spec);
  });
});

/** A config file of the harness's layer as the runner writes it (same-path entries merged). */
function configOf(h: Harness, file: string): any {
  const planned = planConfigFiles([{ label: 'harness', layer: h.spec.config }]).find((f) => f.path === file)!;
  return planned.format === 'toml' ? TOML.parse(planned.content) : JSON.parse(planned.content);
}

describe('resume: how a CLI continues a session', () => {
  const custom = (resume: unknown, config?: any[]) =>
    new Harness({ name: 'mine', capability: 'harness.mine', image: 'example.com/mine:1', command: ['mine', '{prompt}'], resume: resume as any, ...(config ? { config } : {}) });

  test('each preset says how it resumes: native (argv, the conversation files in HOME) or transcript and why', () => {
    expect(Harness.codex().spec.resume).toEqual({ argv: ['resume', '--last', '--all'], state: ['.codex/sessions'] });
    // Codex writes its conversation only without --ephemeral.
    expect(Harness.codex().spec.command).not.toContain('--ephemeral');
    expect(Harness.claudeCode().spec.resume).toEqual({ start: ['--session-id', '{session_id}'], argv: ['--resume', '{session_id}'], state: ['.claude/projects'] });
    expect(Harness.geminiCli().spec.resume).toEqual({ start: ['--session-id', '{session_id}'], argv: ['--resume', '{session_id}'], state: ['.gemini/tmp/*/chats'] });
    expect(Harness.copilot().spec.resume).toEqual({ start: ['--session-id={session_id}'], argv: ['--session-id={session_id}'], state: ['.copilot/session-state/{session_id}'] });
    expect(Harness.opencode().spec.resume).toEqual({ unsupported: expect.stringMatching(/^opencode 1\.18 ties a session to the directory it ran in \(measured\)/) });
  });

  test('no preset keeps a credential or config file of its own as conversation state', () => {
    for (const name of Harness.presets()) {
      const { spec } = Harness.fromPreset(name);
      const state = spec.resume && 'state' in spec.resume ? spec.resume.state : [];
      for (const p of state) expect(p).not.toMatch(/auth|token|config|credential|settings|\.json$|\.toml$/);
    }
  });

  test('a custom harness may declare it; without one it resumes from the transcript', () => {
    expect(custom({ argv: ['--continue'], state: ['.mine/history'] }).spec.resume).toEqual({ argv: ['--continue'], state: ['.mine/history'] });
    expect(custom(undefined).spec.resume).toBeUndefined();
    expect(custom({ unsupported: 'mine keeps no history' }).spec.resume).toEqual({ unsupported: 'mine keeps no history' });
  });

  test.each<[string, unknown, RegExp]>([
    ['a state path leaving HOME', { argv: ['--continue'], state: ['../etc'] }, /Harness "mine": resume\.state\[0\]: "\.\.\/etc" must stay inside HOME: a relative path without "\.\.", "\." or empty segments, e\.g\. "\.codex\/sessions"/],
    ['an absolute state path', { argv: ['--continue'], state: ['/root/.mine'] }, /resume\.state\[0\]: "\/root\/\.mine" must stay inside HOME/],
    ['a "*" inside a name', { argv: ['--continue'], state: ['.mine/ses*'] }, /resume\.state\[0\]: "\.mine\/ses\*": "\*" matches one whole name; write it as its own segment/],
    ['all of HOME', { argv: ['--continue'], state: ['*'] }, /resume\.state\[0\]: "\*" would take all of HOME; name the CLI's conversation folder/],
    ['an unknown placeholder', { argv: ['--resume', '{id}'], state: ['.mine'] }, /resume\.argv\[1\]: unknown placeholder "\{id\}"; the only one is \{session_id\}/],
    ['no argv', { state: ['.mine'] }, /resume\.argv: must be a non-empty list of argv elements, e\.g\. \["--resume", "\{session_id\}"\]/],
    ['no state', { argv: ['--continue'] }, /resume\.state: must list the HOME-relative files or folders of the conversation/],
    ['both kinds', { argv: ['--continue'], state: ['.mine'], unsupported: 'x' }, /resume: has unsupported and argv, state; give either \{ unsupported \} or \{ argv, state \}/],
    ['an empty reason', { unsupported: ' ' }, /resume\.unsupported: must say why the CLI cannot resume natively/],
  ])('%s is an error naming the field and the fix', (_what, resume, message) => {
    expect(() => custom(resume)).toThrow(message);
  });

  test('a state path that covers a config file of the harness is refused (it may hold keys)', () => {
    expect(() => custom({ argv: ['--continue'], state: ['.mine'] }, [{ path: '.mine/config.json', format: 'json', content: '{}' }])).toThrow(
      'Harness "mine": resume.state[0]: ".mine" covers the harness\'s config file ".mine/config.json"; name the conversation\'s files only (never config or credentials)',
    );
  });

  test('the schema refuses a resume of the wrong shape, naming it', () => {
    const spec = { ...Harness.codex().spec, resume: { argv: 'resume', state: ['.codex/sessions'] } };
    expect(validateSpec('Harness', spec)).toContain('resume.argv: must be array');
  });
});
