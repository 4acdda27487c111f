import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';
import { main } from '../../cli/main';
import { Harness } from '../../constructs';
import { expectValidK8s } from '../support/k8s-schema';

const root = path.join(__dirname, '..', '..');
const paddock = (...args: string[]) => spawnSync(process.execPath, [path.join(root, 'bin', 'paddock.js'), ...args], { cwd: root, encoding: 'utf8' });

describe('paddock harness dry-run (the built CLI, as a process)', () => {
  test('prints the exact argv, one JSON array element per argv entry', () => {
    const prompt = 'Fix "the" bug\nand $(do not) run this';
    const result = paddock('harness', 'dry-run', 'codex', '--model', 'gpt-5-mini', '--prompt', prompt);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual(Harness.codex().render({ model: 'gpt-5-mini', prompt }));
    expect(JSON.parse(result.stdout).at(-1)).toBe(prompt);
  });

  test('reads a synthesized harness.json as well as a preset name', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-cli-')), 'harness.json');
    fs.writeFileSync(file, JSON.stringify(Harness.claudeCode().spec));
    const result = paddock('harness', 'dry-run', file, '--prompt', 'hi');
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual(Harness.claudeCode().render({ prompt: 'hi' }));
  });

  test('--prompt-via picks how a preset passes the prompt; a bad value exits 2 naming the choices', () => {
    const stdin = paddock('harness', 'dry-run', 'codex', '--prompt-via', 'stdin', '--prompt', 'a long prompt');
    expect(stdin.status).toBe(0);
    expect(JSON.parse(stdin.stdout)).toEqual(Harness.codex({ promptVia: 'stdin' }).render({ prompt: 'a long prompt' }));
    expect(JSON.parse(stdin.stdout).at(-1)).toBe('-');
    expect(stdin.stderr).toBe('the prompt goes to the agent on stdin\n');
    const bad = paddock('harness', 'dry-run', 'opencode', '--prompt-via', 'tty', '--prompt', 'hi');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/Harness "opencode": promptVia must be "argv", "stdin", "file"; got "tty"/);
  });

  test('--session shows the argv a session\'s first and later runs add, how the CLI resumes and the state it keeps', () => {
    const claude = paddock('harness', 'dry-run', 'claude-code', '--prompt', 'hi', '--session');
    expect(claude.status).toBe(0);
    const base = Harness.claudeCode().render({ prompt: 'hi' });
    expect(JSON.parse(claude.stdout)).toEqual({
      argv: [...base.slice(0, -2), '--session-id', '{session_id}', '--', 'hi'],
      resumed: [...base.slice(0, -2), '--resume', '{session_id}', '--', 'hi'],
      resume: 'native',
      state: ['.claude/projects'],
    });
    const opencode = paddock('harness', 'dry-run', 'opencode', '--prompt', 'hi', '--session');
    expect(JSON.parse(opencode.stdout)).toMatchObject({ resume: expect.stringMatching(/^transcript \(opencode 1\.18 ties a session to the directory it ran in/), state: [] });
  });

  test('an unknown preset exits 2 and lists the presets', () => {
    const result = paddock('harness', 'dry-run', 'codexx', '--prompt', 'hi');
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/"codexx" is neither a harness preset \(claude-code, codex, copilot, gemini-cli, opencode\) nor a file/);
  });

  test('a missing --prompt exits 2 and says so', () => {
    const result = paddock('harness', 'dry-run', 'codex');
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/needs --prompt TEXT/);
  });
});

describe('cdk8s synth (the real cdk8s CLI)', () => {
  test('writes the example platform as valid YAML', () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-synth-'));
    execFileSync(path.join(root, 'node_modules', '.bin', 'cdk8s'), ['synth', '--output', out], {
      cwd: root,
      env: { ...process.env, CDK8S_CHECK_UPGRADE: 'false' },
      stdio: 'pipe',
    });
    const files = fs.readdirSync(out);
    expect(files).toEqual(['paddock.k8s.yaml']);
    const objects = parseAllDocuments(fs.readFileSync(path.join(out, files[0]), 'utf8')).map((d) => d.toJS());
    expect(objects.length).toBeGreaterThan(20);
    expectValidK8s(objects);
  });
});

describe('one command line: every command through one parser', () => {
  const COMMANDS = ['run', 'harness dry-run', 'harness presets', 'egress explain', 'controller', 'worker', 'local', 'gateway', 'tasks submit', 'tasks get', 'tasks list', 'tasks watch', 'tasks results', 'tasks cancel', 'sessions list', 'sessions get', 'sessions delete', 'version'];

  async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    const code = await main(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) }, {});
    return { code, stdout, stderr };
  }

  test.each(COMMANDS)('paddock %s --help prints its usage and exits 0', async (words) => {
    for (const help of ['--help', '-h']) {
      const r = await cli(...words.split(' '), help);
      expect(r).toMatchObject({ code: 0, stderr: '' });
      expect(r.stdout).toMatch(new RegExp(`^Usage: paddock ${words}`));
    }
  });

  test.each(COMMANDS.filter((w) => w !== 'version'))('paddock %s --bogus exits 2 and lists the known flags', async (words) => {
    const r = await cli(...words.split(' '), '--bogus');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^paddock ${words}: unknown option --bogus; known: --`));
  });

  test('paddock version --bogus: version takes no options', async () => {
    expect(await cli('version', '--bogus')).toMatchObject({ code: 2, stderr: 'paddock version: unknown option --bogus; known: none but --help\n' });
  });

  test('the groups and the top level: help exits 0, a missing or unknown command exits 2 naming the choices', async () => {
    expect(await cli('--help')).toMatchObject({ code: 0, stdout: expect.stringMatching(/^Usage:\n {2}paddock run /) });
    expect(await cli('harness', '--help')).toMatchObject({ code: 0, stdout: expect.stringContaining('paddock harness presets [--json]') });
    expect(await cli()).toMatchObject({ code: 2, stderr: expect.stringMatching(/^Usage:/) });
    expect(await cli('harness')).toMatchObject({ code: 2, stderr: expect.stringMatching(/^paddock: harness needs a command; use "dry-run" or "presets"\n/) });
    expect(await cli('deploy')).toMatchObject({ code: 2, stderr: expect.stringMatching(/^paddock: unknown command "deploy"; use "run", "harness", "egress", "controller", "worker", "local", "gateway", "tasks", "sessions", "publish" or "version"\n/) });
  });

  test('paddock --version and paddock version print the package version', () => {
    const { version } = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
    for (const args of [['--version'], ['version']]) {
      const r = paddock(...args);
      expect(r).toMatchObject({ status: 0, stdout: `${version}\n`, stderr: '' });
    }
  });

  test('harness presets --json: each preset with its capability, command and image', async () => {
    const r = await cli('harness', 'presets', '--json');
    expect(r.code).toBe(0);
    const presets = JSON.parse(r.stdout);
    expect(presets.map((p: { name: string }) => p.name)).toEqual(Harness.presets());
    expect(presets.find((p: { name: string }) => p.name === 'codex')).toMatchObject({ capability: 'harness.codex', command: Harness.codex().spec.command, image: Harness.codex().image });
  });

  test('a flag given twice, a flag without its value, and a value on a switch are refused by name', async () => {
    expect((await cli('local', '--dir', 'a', '--dir', 'b')).stderr).toBe('paddock local: --dir is given twice\n');
    expect((await cli('worker', '--pool')).stderr).toBe('paddock worker: --pool needs a value, e.g. --pool codex\n');
    expect((await cli('controller', '--leader-elect=yes')).stderr).toBe('paddock controller: --leader-elect takes no value; write --leader-elect alone\n');
  });
});
