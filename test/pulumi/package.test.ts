/**
 * How the component ships: `paddock/pulumi` resolves through package.json
 * "exports" to the built component, and the main entry never loads @pulumi/*
 * (optional peer dependencies: cdk8s-only users do not install them).
 * Runs the built package (lib/, built by jest's global setup) in child processes.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

const root = path.join(__dirname, '..', '..');

function node(script: string): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8', timeout: 20000 });
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(rel);
    return e.name.endsWith('.ts') ? [rel] : [];
  });
}

describe('the Pulumi component in the package', () => {
  test('constructs and policy never import @pulumi/*', () => {
    const offenders = [...sourceFiles('constructs'), ...sourceFiles('policy'), 'index.ts'].filter((f) => /from ['"]@pulumi\/|require\(['"]@pulumi\//.test(fs.readFileSync(path.join(root, f), 'utf8')));
    expect(offenders).toEqual([]);
  });

  test('`paddock/pulumi` resolves to the built component and exports AgentPlatform', () => {
    const run = node(`
      const resolved = require.resolve('paddock/pulumi');
      const m = require('paddock/pulumi');
      console.log(JSON.stringify({ resolved, AgentPlatform: typeof m.AgentPlatform, type: m.AGENT_PLATFORM_TYPE }));`);
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual({
      resolved: path.join(root, 'lib', 'stacks', 'pulumi', 'index.js'),
      AgentPlatform: 'function',
      type: 'paddock:index:AgentPlatform',
    });
  });

  test('`paddock` (the construct library) loads no @pulumi module', () => {
    const run = node(`
      require('paddock');
      console.log(JSON.stringify(Object.keys(require.cache).filter((f) => f.includes('@pulumi'))));`);
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual([]);
  });
});
