import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';
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
