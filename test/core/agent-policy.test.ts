/**
 * Agent policy: how layers merge (the task wins, a deny always wins), what each preset's
 * mapping turns a policy into, and every place an unenforceable item is refused: the
 * constructs (synth), the controller's task API (submit), `paddock harness dry-run`.
 * The real CLIs obeying the result: test/runner/agent-policy.e2e.test.ts.
 */
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { insertPolicyArgs, mergePolicies, planPolicy, policyFor } from '../../core/agent-policy';
import { AgentPool, AgentTask, Harness } from '../../constructs';
import { startApi } from '../../controller/api';
import { Controller } from '../../controller/controller';
import { planConfigFiles } from '../../runner/config-layers';
import { localToken, memoryPlatform, taskSpec } from '../controller/support/platform';
import { makeTmpDir } from '../support/runner-fixtures';
import { find, newPlatform, synth } from '../support/synth';

const paddock = (...args: string[]) => spawnSync(process.execPath, [path.resolve(__dirname, '..', '..', 'bin', 'paddock.js'), ...args], { encoding: 'utf8' });

describe('mergePolicies: harness < pool < task', () => {
  test('the nearest layer wins for allowedTools, maxTurns and appendSystemPrompt', () => {
    expect(mergePolicies([{ allowedTools: ['Read'], maxTurns: 50, appendSystemPrompt: 'h' }, { maxTurns: 20 }, { allowedTools: ['Read', 'Edit'], appendSystemPrompt: 't' }])).toEqual({
      allowedTools: ['Read', 'Edit'],
      maxTurns: 20,
      appendSystemPrompt: 't',
    });
  });
  test('a deny always wins: denied tools add up and leave the allowlist, shell: false anywhere stays false', () => {
    expect(mergePolicies([{ deniedTools: ['WebFetch'], shell: false }, { deniedTools: ['Edit'] }, { allowedTools: ['Read', 'Edit', 'WebFetch'], shell: true }])).toEqual({
      allowedTools: ['Read'],
      deniedTools: ['WebFetch', 'Edit'],
      shell: false,
    });
  });
  test('no policy anywhere: nothing, and the preset argv is unchanged', () => {
    expect(mergePolicies([undefined, undefined, {}])).toEqual({});
    expect(planPolicy(Harness.codex().spec, {})).toEqual({ argv: [], files: [], replaceKeys: [], problems: [] });
  });
});

describe('each preset maps the items onto its CLI', () => {
  const all = { allowedTools: ['A', 'B'], deniedTools: ['B'], maxTurns: 7, appendSystemPrompt: 'Be careful.' };
  test('claude-code: flags, inserted before the prompt', () => {
    const h = Harness.claudeCode();
    const plan = policyFor(h.spec, undefined, { policy: { ...all, shell: false } });
    expect(plan.argv).toEqual(['--tools', 'A', '--disallowedTools', 'B,Bash', '--max-turns', '7', '--append-system-prompt', 'Be careful.']);
    const argv = insertPolicyArgs(h.spec.command, h.render({ prompt: 'do {model} it' }), plan.argv);
    expect(argv.slice(-3)).toEqual(['Be careful.', '--', 'do {model} it']);
  });
  test('gemini-cli: settings.json keys and GEMINI.md, merged over the preset layer', () => {
    const h = Harness.geminiCli();
    const plan = policyFor(h.spec, undefined, { policy: { ...all, shell: false } });
    expect(plan.argv).toEqual([]);
    const files = planConfigFiles([{ label: 'harness', layer: h.spec.config }, { label: 'agent policy', layer: { files: plan.files }, replaceKeys: plan.replaceKeys }]);
    const settings = JSON.parse(files.find((f) => f.path === '.gemini/settings.json')!.content);
    expect(settings.tools).toEqual({ core: ['A'], exclude: ['B', 'run_shell_command'] });
    expect(settings.model).toEqual({ maxSessionTurns: 7 });
    expect(settings.security.auth.selectedType).toBe('gemini-api-key');
    expect(files.find((f) => f.path === '.gemini/GEMINI.md')?.content).toBe('Be careful.');
  });
  test('opencode: an allowlist replaces the preset\'s permissions (its "bash": "allow" must not survive)', () => {
    const h = Harness.opencode();
    const plan = policyFor(h.spec, undefined, { policy: { allowedTools: ['read', 'bash'], shell: false, appendSystemPrompt: 'x' } });
    const files = planConfigFiles([{ label: 'harness', layer: h.spec.config }, { label: 'agent policy', layer: { files: plan.files }, replaceKeys: plan.replaceKeys }]);
    const config = JSON.parse(files.find((f) => f.path === '.config/opencode/opencode.json')!.content);
    expect(config.permission).toEqual({ '*': 'deny', read: 'allow', bash: 'deny' });
    expect(config.instructions).toEqual(['~/.config/opencode/paddock-system-prompt.md']);
    expect(config.autoupdate).toBe(false);
    // Only denials: merged into the preset's permissions.
    const denyOnly = policyFor(h.spec, undefined, { policy: { deniedTools: ['edit'] } });
    const merged = planConfigFiles([{ label: 'harness', layer: h.spec.config }, { label: 'agent policy', layer: { files: denyOnly.files }, replaceKeys: denyOnly.replaceKeys }]);
    expect(JSON.parse(merged[0].content).permission).toEqual({ bash: 'allow', edit: 'deny', webfetch: 'deny', external_directory: 'allow' });
  });
  test('codex: the shell off and developer_instructions in config.toml', () => {
    const plan = policyFor(Harness.codex().spec, undefined, { policy: { shell: false, appendSystemPrompt: 'Be careful.' } });
    expect(plan.files).toEqual([{ path: '.codex/config.toml', base: 'home', format: 'toml', content: 'developer_instructions = "Be careful."\n\n[features]\nshell_tool = false\nunified_exec = false\n' }]);
  });
  test('copilot: one argv element per tool', () => {
    expect(policyFor(Harness.copilot().spec, undefined, { policy: { allowedTools: ['view', 'create'], shell: false } }).argv).toEqual(['--available-tools', 'view', 'create', '--excluded-tools', 'bash', 'read_bash', 'stop_bash', 'list_bash']);
  });
});

describe('an item the CLI cannot enforce fails closed, naming the CLI and the item', () => {
  test.each([
    ['codex maxTurns', () => Harness.codex({ policy: { maxTurns: 3 } }), /Harness "codex": harness "codex" \(codex\) cannot enforce policy maxTurns 3: codex exec has no limit on model turns; leave maxTurns out/],
    ['codex allowedTools', () => Harness.codex({ policy: { allowedTools: ['exec_command'] } }), /cannot enforce policy allowedTools \["exec_command"\]: codex 0\.169 has no setting that limits its built-in tools/],
    ['codex deniedTools', () => Harness.codex({ policy: { deniedTools: ['web_search'] } }), /cannot enforce policy deniedTools \["web_search"\]: .*use shell: false/],
    ['copilot maxTurns', () => Harness.copilot({ policy: { maxTurns: 3 } }), /harness "copilot" \(copilot\) cannot enforce policy maxTurns 3: copilot 1\.0 has no limit/],
    ['a custom harness without a mapping', () => new Harness({ name: 'mine', capability: 'harness.mine', command: ['mine', '{prompt}'], image: 'x/y:1', policy: { shell: false } }), /harness "mine" \(mine\) cannot enforce policy shell: false: its policyMapping has no entry for it/],
    ['a bad shape', () => Harness.claudeCode({ policy: { maxTurns: 0, allowedTools: ['--evil'], color: 'red' } as any }), /policy: unknown item "color"[\s\S]*allowedTools\[0\]: "--evil" is not a tool name[\s\S]*maxTurns: must be an integer from 1 to 1000, got 0/],
  ])('Harness: %s', (_n, make, message) => {
    expect(make).toThrow(message);
  });

  test('AgentPool: a pool policy one of its harnesses cannot enforce', () => {
    const { platform } = newPlatform();
    expect(() => new AgentPool(platform, 'p', { harnesses: [Harness.claudeCode(), Harness.codex()], policy: { maxTurns: 10 } })).toThrow(/AgentPool "p": policy: harness "codex" \(codex\) cannot enforce policy maxTurns 10/);
  });

  test('AgentTask: the task policy over the pool\'s, checked against its harness; an enforceable one reaches task.json and pool.json', () => {
    const { chart, platform } = newPlatform();
    // The model key comes from a gateway (the clean room): a placeholder on the pool.
    const pool = new AgentPool(platform, 'p', { harnesses: [Harness.codex()], policy: { shell: false }, env: { OPENAI_API_KEY: 'injected-by-gateway' } });
    expect(() => new AgentTask(platform, 'bad', { pool, prompt: 'x', policy: { maxTurns: 4 } })).toThrow(/AgentTask "bad": policy: harness "codex" \(codex\) cannot enforce policy maxTurns 4/);
    new AgentTask(platform, 'ok', { pool, prompt: 'x', policy: { appendSystemPrompt: 'Never push.' } });
    const objects = synth(chart);
    expect(JSON.parse(find(objects, 'ConfigMap', 'task-ok').data['task.json']).policy).toEqual({ appendSystemPrompt: 'Never push.' });
    expect(JSON.parse(find(objects, 'ConfigMap', 'pool-p').data['pool.json']).policy).toEqual({ shell: false });
    expect(JSON.parse(find(objects, 'ConfigMap', 'harness-codex').data['harness.json']).policyMapping.maxTurns).toEqual({ unsupported: 'codex exec has no limit on model turns' });
  });

  test('the task API refuses it at submit (422) with the same message, and accepts what the CLI can enforce', async () => {
    const store = memoryPlatform(Harness.codex({ name: 'slow' } as any).spec);
    const controller = new Controller({ store, namespace: 'paddock' });
    await controller.start();
    const dir = makeTmpDir('paddock-policy-api-');
    const token = localToken(dir);
    const api = await startApi(controller, { port: 0, host: '127.0.0.1', routes: 'tasks', auth: token.auth });
    try {
      const post = (policy: object) => fetch(`${api.url}/v1/tasks`, { method: 'POST', headers: token.headers, body: JSON.stringify(taskSpec('t', { policy })) });
      const bad = await post({ maxTurns: 9 });
      expect(bad.status).toBe(422);
      expect(await bad.json()).toEqual({ error: 'the agent policy cannot be enforced', problems: [expect.stringMatching(/harness "slow" \(codex\) cannot enforce policy maxTurns 9: codex exec has no limit/)] });
      const shape = await post({ maxTurns: 'many' });
      expect(shape.status).toBe(400);
      expect((await post({ shell: false })).status).toBe(201);
    } finally {
      await api.close();
      await controller.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('paddock harness dry-run shows what a policy produces', () => {
  test('argv and the policy config layer', () => {
    const r = paddock('harness', 'dry-run', 'gemini-cli', '--prompt', 'hi', '--deny-tool', 'web_fetch', '--no-shell', '--max-turns', '12', '--append-system-prompt', 'Never push.');
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout);
    expect(out.argv).toEqual(Harness.geminiCli().render({ prompt: 'hi' }));
    expect(out.files).toEqual([
      { path: '.gemini/settings.json', base: 'home', format: 'json', content: expect.any(String) },
      { path: '.gemini/GEMINI.md', base: 'home', format: 'text', content: 'Never push.' },
    ]);
    expect(JSON.parse(out.files[0].content)).toEqual({ tools: { exclude: ['web_fetch', 'run_shell_command'] }, model: { maxSessionTurns: 12 } });
    const claude = JSON.parse(paddock('harness', 'dry-run', 'claude-code', '--prompt', 'hi', '--allow-tool', 'Read', '--allow-tool', 'Edit').stdout);
    expect(claude.argv).toEqual([...Harness.claudeCode().render({ prompt: 'hi' }).slice(0, -2), '--tools', 'Read,Edit', '--', 'hi']);
  });
  test('an item the CLI cannot enforce exits 2 with its message', () => {
    const r = paddock('harness', 'dry-run', 'codex', '--prompt', 'hi', '--max-turns', '3');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/harness "codex" \(codex\) cannot enforce policy maxTurns 3: codex exec has no limit on model turns/);
    expect(paddock('harness', 'dry-run', 'codex', '--prompt', 'hi', '--max-turns', 'lots').stderr).toMatch(/--max-turns: must be a whole number such as 20, got "lots"/);
  });
});
