/**
 * The repository's Pulumi program (Pulumi.yaml → stacks/pulumi/program.ts) with
 * mocked `pulumi config`, against Pulumi's mocks (pulumi.runtime.setMocks): each
 * run loads the program in a fresh module registry, as the Pulumi CLI would load
 * it in a fresh process, and waits for its registrations like the CLI's run
 * harness does (runtime.disconnect drains the RPC queue). No CLI, no cluster.
 */
import { installMocks, plaintextOccurrences, Registration, unwrapSecrets, valueOf } from './support/mocks'; // first: installs the mocks
import type * as pulumiType from '@pulumi/pulumi';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { parse as parseYaml } from 'yaml';
import { examplePlatform } from '../../stacks/example-platform';
import { cdk8sExample, identity } from './support/deploy';

const OPENAI_KEY = 'sk-proj-TESTONLY-program-0123456789abcdef';
const ANTHROPIC_KEY = 'sk-ant-TESTONLY-program-fedcba9876543210';
const OUTPUTS = ['namespace', 'poolNames', 'controllerService', 'controllerUrl', 'taskJobNames', 'credentialSecretNames'];

interface ProgramRun {
  readonly registrations: Registration[];
  readonly outputs: Record<string, any>;
  readonly warnings: string[];
}

async function runProgram(config: Record<string, string>, secretKeys: string[] = []): Promise<ProgramRun> {
  const registrations: Registration[] = [];
  const warnings: string[] = [];
  const warn = jest.spyOn(console, 'warn').mockImplementation((msg: unknown) => void warnings.push(String(msg)));
  let sdk!: typeof pulumiType;
  let program: Record<string, pulumiType.Output<unknown>> = {};
  try {
    jest.isolateModules(() => {
      sdk = require('@pulumi/pulumi');
      installMocks(sdk, registrations, 'paddock');
      sdk.runtime.setAllConfig(config, secretKeys);
      program = require('../../stacks/pulumi/program');
    });
    const outputs: Record<string, any> = {};
    for (const key of OUTPUTS) outputs[key] = await valueOf(program[key]);
    expect(Object.keys(program).sort()).toEqual([...OUTPUTS].sort());
    await sdk.runtime.disconnect();
    return { registrations, outputs, warnings };
  } finally {
    warn.mockRestore();
  }
}

const kubernetes = (run: ProgramRun) => run.registrations.filter((r) => r.type.startsWith('kubernetes:'));

describe('the Pulumi program (stacks/pulumi/program.ts) under Pulumi mocks and mocked config', () => {
  test('Pulumi.yaml runs the built program with the nodejs runtime, no ts-node', () => {
    const project = parseYaml(fs.readFileSync(path.join(__dirname, '..', '..', 'Pulumi.yaml'), 'utf8'));
    expect(project).toEqual({
      name: 'paddock',
      description: expect.any(String),
      runtime: { name: 'nodejs', options: { typescript: false } },
      main: 'lib/stacks/pulumi/program.js',
    });
    // tsconfig.json compiles stacks/pulumi/program.ts to exactly that path.
    const tsconfig = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'tsconfig.json'), 'utf8'));
    expect(tsconfig.compilerOptions).toMatchObject({ rootDir: '.', outDir: 'lib', module: 'commonjs' });
    expect(tsconfig.include).toContain('stacks/**/*.ts');
  });

  test('the built program at Pulumi.yaml `main` runs in a plain node process, config from the environment as the CLI passes it', () => {
    // What the Pulumi CLI's nodejs host does, minus the engine: load `main` (compiled by jest's
    // global setup) with PULUMI_CONFIG / PULUMI_CONFIG_SECRET_KEYS set, then drain the RPC queue.
    const script = `
      const fs = require('fs'), path = require('path'), pulumi = require('@pulumi/pulumi');
      const seen = [];
      pulumi.runtime.setMocks({
        newResource: (a) => { seen.push({ type: a.type, name: a.name, inputs: a.inputs }); return { id: a.name + '-id', state: a.inputs }; },
        call: (a) => a.inputs,
      }, 'paddock', 'dev', false);
      const project = require('yaml').parse(fs.readFileSync('Pulumi.yaml', 'utf8'));
      const program = require(path.resolve(project.main));
      (async () => {
        const outputs = {};
        for (const [k, v] of Object.entries(program)) outputs[k] = await new Promise((r) => v.apply(r));
        await pulumi.runtime.disconnect();
        process.stdout.write(JSON.stringify({ outputs, seen }));
      })();`;
    const run = spawnSync(process.execPath, ['-e', script], {
      cwd: path.join(__dirname, '..', '..'),
      encoding: 'utf8',
      timeout: 20000,
      env: {
        ...process.env,
        PULUMI_CONFIG: JSON.stringify({ 'paddock:namespace': 'agents', 'paddock:pools': '["codex"]', 'paddock:openaiApiKey': OPENAI_KEY }),
        PULUMI_CONFIG_SECRET_KEYS: JSON.stringify(['paddock:openaiApiKey']),
      },
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const { outputs, seen } = JSON.parse(run.stdout) as { outputs: Record<string, any>; seen: Registration[] };
    expect(outputs).toMatchObject({ namespace: 'agents', poolNames: ['codex'], credentialSecretNames: ['openai-api'], controllerUrl: 'http://paddock-controller.agents.svc' });
    expect(seen.map((r) => r.type)).toEqual(expect.arrayContaining(['paddock:index:AgentPlatform', 'kubernetes:apps/v1:Deployment', 'kubernetes:core/v1:Secret', 'kubernetes:batch/v1:Job']));
    expect(seen.flatMap((r) => plaintextOccurrences(r.inputs, OPENAI_KEY))).toEqual([]);
  });

  test('with no config it deploys the example platform: the objects cdk8s synth writes, and nothing else', async () => {
    const run = await runProgram({});
    const expected = cdk8sExample();
    const registered = kubernetes(run);
    expect(registered.map((r) => identity(r.inputs)).sort()).toEqual(expected.map(identity).sort());
    expect(run.registrations.filter((r) => r.type === 'paddock:index:AgentPlatform').map((r) => r.name)).toEqual(['paddock']);
    expect(run.outputs).toMatchObject({
      namespace: 'paddock',
      poolNames: ['codex', 'claude'],
      controllerService: 'paddock-controller',
      controllerUrl: 'http://paddock-controller.paddock.svc',
      credentialSecretNames: [],
    });
    expect(Object.keys(run.outputs.taskJobNames)).toEqual(['summarize-readme']); // the claude pool is warm: its task has no Job
    // Both Secrets are then expected to exist already, and the program says so.
    expect(run.warnings.join('\n')).toMatch(/Secret "openai-api" is not created by this stack/);
    expect(run.warnings.join('\n')).toMatch(/Secret "anthropic-api" is not created by this stack/);
  });

  test('namespace, pools, image registry and tag, and an API key from config', async () => {
    const run = await runProgram(
      {
        'paddock:namespace': 'agents',
        'paddock:pools': '["codex"]',
        'paddock:imageRegistry': 'registry.example.com/paddock',
        'paddock:imageTag': '9.9.9',
        'paddock:openaiApiKey': OPENAI_KEY,
        'paddock:anthropicApiKey': ANTHROPIC_KEY,
      },
      ['paddock:openaiApiKey', 'paddock:anthropicApiKey'],
    );
    const registered = kubernetes(run);
    const names = registered.map((r) => `${r.inputs.kind}/${r.inputs.metadata.name}`);
    expect(names).toContain('Deployment/pool-codex');
    expect(names.filter((n) => /claude/.test(n))).toEqual([]);
    expect(registered.every((r) => ['Namespace', 'RuntimeClass', 'ClusterRoleBinding'].includes(r.inputs.kind) || r.inputs.metadata.namespace === 'agents')).toBe(true);
    const images = registered.flatMap((r) => (r.inputs.spec?.template?.spec?.containers ?? []).map((c: any) => c.image));
    expect(images.length).toBeGreaterThan(1);
    for (const image of images) expect(image).toMatch(/^registry\.example\.com\/paddock\/paddock-[a-z-]+:9\.9\.9$/);

    const secret = registered.find((r) => r.inputs.kind === 'Secret')!;
    expect(unwrapSecrets(secret.inputs)).toMatchObject({ metadata: { name: 'openai-api', namespace: 'agents' }, stringData: { OPENAI_API_KEY: OPENAI_KEY } });
    expect(registered.filter((r) => r.inputs.kind === 'Secret')).toHaveLength(1); // claude is not deployed: its key is not used
    for (const value of [OPENAI_KEY, ANTHROPIC_KEY]) {
      expect(run.registrations.flatMap((r) => plaintextOccurrences(r.inputs, value))).toEqual([]);
    }
    expect(run.outputs).toMatchObject({ namespace: 'agents', poolNames: ['codex'], credentialSecretNames: ['openai-api'] });
    expect(Object.keys(run.outputs.taskJobNames)).toEqual(['summarize-readme']);
    expect(run.warnings).toEqual([]);
  });

  test('exampleTasks=false leaves the tasks out', async () => {
    const run = await runProgram({ 'paddock:exampleTasks': 'false' });
    const kinds = kubernetes(run).map((r) => `${r.inputs.kind}/${r.inputs.metadata.name}`);
    expect(kinds.filter((k) => k.startsWith('Job/') || k.startsWith('ConfigMap/task-'))).toEqual([]);
    expect(kinds).toContain('Deployment/pool-claude');
    expect(run.outputs.taskJobNames).toEqual({});
  });
});

describe('examplePlatformArgs: pulumi config → AgentPlatform args', () => {
  // Config objects read the process-wide config; these run in this registry's SDK instance.
  const pulumi: typeof pulumiType = require('@pulumi/pulumi');
  const { examplePlatformArgs } = require('../../stacks/pulumi/example-args');
  afterAll(() => pulumi.runtime.setAllConfig({}, []));
  const argsFor = (config: Record<string, string>, secretKeys: string[] = []) => {
    pulumi.runtime.setAllConfig(config, secretKeys);
    return examplePlatformArgs(new pulumi.Config('paddock'));
  };

  test('no config: exactly the example definition', () => {
    expect(argsFor({})).toEqual(examplePlatform);
  });

  test('API keys become Secret values that are Pulumi secrets', async () => {
    const args = argsFor({ 'paddock:openaiApiKey': OPENAI_KEY, 'paddock:anthropicApiKey': ANTHROPIC_KEY }, ['paddock:openaiApiKey', 'paddock:anthropicApiKey']);
    expect(Object.keys(args.credentialValues)).toEqual(['openai-api', 'anthropic-api']);
    const value = args.credentialValues['openai-api'].OPENAI_API_KEY;
    expect(await pulumi.isSecret(value)).toBe(true);
    expect(await valueOf(value)).toBe(OPENAI_KEY);
  });

  test('pools selects pools, and with them their credentials, tasks and allowlists', () => {
    const args = argsFor({ 'paddock:pools': '["claude"]' });
    expect(args.pools.map((p: any) => p.name)).toEqual(['claude']);
    expect(args.credentials.map((c: any) => c.secretName)).toEqual(['anthropic-api']);
    expect(args.tasks.map((t: any) => t.name)).toEqual(['review-spoon-knife']);
    const claude = examplePlatform.pools.find((p) => p.name === 'claude')!;
    expect(args.egress.map((e: any) => e.name)).toEqual(claude.egress);
  });

  test.each([
    ['an unknown pool', '["codex", "gemini"]', /paddock:pools: no pool named "gemini"; the example has codex, claude/],
    ['an empty list', '[]', /paddock:pools: must be a non-empty list of pool names/],
    ['not a list', '"codex"', /paddock:pools: must be a non-empty list of pool names/],
  ])('pools with %s is a RunError naming the key', (_label, value, message) => {
    let error: unknown;
    try {
      argsFor({ 'paddock:pools': value });
    } catch (err) {
      error = err;
    }
    expect(pulumi.RunError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(message);
  });
});
