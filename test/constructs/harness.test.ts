import { Harness, lintCommandTemplate, renderCommand } from '../../constructs';
import { validateSpec } from '../../policy/specs';

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
    expect(harness.promptVia).toBe('argv');
    expect(harness.hosts.length).toBeGreaterThan(0);
    expect(harness.image).toMatch(new RegExp(`/paddock-${preset}:`));
    // A prompt that starts with "-" must not be parsed as an option: it follows "--", or is
    // attached as --prompt=VALUE (measured: gemini and copilot take "--prompt -x" for a flag).
    const argv = harness.render({ prompt: '--help me' });
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

  test('fromSpec round-trips a synthesized harness.json', () => {
    const spec = Harness.geminiCli().spec;
    expect(Harness.fromSpec(JSON.parse(JSON.stringify(spec))).spec).toEqual(spec);
  });
});
