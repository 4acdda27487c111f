/**
 * The package as a consumer installs it: `npm pack` of the built repository,
 * unpacked into a consumer project's node_modules (its dependencies linked from
 * ours), then type-checked under every moduleResolution a consumer may use and run.
 */
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const root = path.join(__dirname, '..');
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');

function packFiles(): string[] {
  const [pack] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
  return pack.files.map((f: { path: string }) => f.path);
}

/** A consumer project with the packed paddock in node_modules/paddock. */
function consumerProject(): string {
  const consumer = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-consumer-'));
  const modules = path.join(consumer, 'node_modules');
  fs.mkdirSync(path.join(modules, 'paddock'), { recursive: true });
  const tarball = execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', consumer], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n').pop()!;
  execFileSync('tar', ['-xzf', path.join(consumer, tarball), '-C', path.join(modules, 'paddock'), '--strip-components=1']);
  // Its dependencies resolve from the consumer's node_modules, as after `npm install paddock`.
  for (const entry of fs.readdirSync(path.join(root, 'node_modules'))) {
    if (entry.startsWith('.') || entry === 'paddock') continue;
    fs.symlinkSync(path.join(root, 'node_modules', entry), path.join(modules, entry), 'dir');
  }
  return consumer;
}

describe('the package as a consumer sees it', () => {
  test('npm pack ships the built library, its types, the schemas, the templates and the licence', () => {
    const files = packFiles();
    expect(files).toEqual(
      expect.arrayContaining([
        'LICENSE',
        'bin/paddock.js',
        'lib/index.js',
        'lib/index.d.ts',
        'lib/constructs/agent-pool.d.ts',
        'lib/cli/main.js',
        'lib/stacks/pulumi/index.d.ts',
        'lib/policy/schemas/task.schema.json',
        'policy/schemas/task.schema.json',
        'templates/harnesses/codex/config.toml',
        'worker-images/images.json',
      ]),
    );
    expect(fs.readFileSync(path.join(root, 'LICENSE'), 'utf8')).toMatch(/Apache License\s+Version 2\.0/);
    // Nothing that only works in the repository, no sources the stack traces would point at.
    const stray = files.filter(
      (f) => f.startsWith('test/') || f.startsWith('dist/') || f.startsWith('lib/bench/') || f.endsWith('.map') || (f.endsWith('.ts') && !f.endsWith('.d.ts')) || (f.startsWith('worker-images/') && f !== 'worker-images/images.json'),
    );
    expect(stray).toEqual([]);
    expect(files.filter((f) => f.endsWith('.js') && fs.readFileSync(path.join(root, f), 'utf8').includes('sourceMappingURL'))).toEqual([]);
  });

  test('installing it runs no build (prepack builds, prepare does not exist)', () => {
    const scripts = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).scripts;
    expect(scripts.prepare).toBeUndefined();
    expect(scripts.postinstall).toBeUndefined();
    expect(scripts.prepack).toBe('npm run build');
  });

  describe('a consumer project with the packed tarball', () => {
    const consumer = consumerProject();
    fs.writeFileSync(
      path.join(consumer, 'main.ts'),
      [
        "import { App, Chart } from 'cdk8s';",
        "import { AgentPool, buildPlatform, CredentialSecret, Harness, Platform } from 'paddock';",
        "import type { ConfigFileSpec, HarnessSpec, PlatformDefinition, PoolSpec, TaskSpec } from 'paddock';",
        "import type { AgentPlatformArgs } from 'paddock/pulumi';",
        "const chart = new Chart(new App({ outdir: 'out' }), 'c', { disableResourceNameHashes: true });",
        "const platform = new Platform(chart, 'p');",
        "const pool = new AgentPool(platform, 'codex', { harnesses: [Harness.codex()] });",
        "CredentialSecret.fromSecretName(platform, 'openai', 'openai-api', ['OPENAI_API_KEY']).grantTo(pool);",
        "const def: PlatformDefinition = { namespace: 'team', pools: [{ name: 'claude', harnesses: ['claude-code'] }] };",
        "buildPlatform(new Chart(new App({ outdir: 'out2' }), 'd', { disableResourceNameHashes: true }), 'platform', def);",
        'const spec: HarnessSpec = Harness.codex().spec;',
        "const file: ConfigFileSpec | undefined = spec.config?.files?.[0];",
        'const specs: [TaskSpec?, PoolSpec?] = [];',
        "const args: Partial<AgentPlatformArgs> = { namespace: 'agents' };",
        'const name: string = pool.objectName;',
        'console.log(name, chart.toJson().length, file?.path, specs.length, args.namespace);',
      ].join('\n'),
    );
    const typeRoots = ['--types', 'node', '--typeRoots', path.join(root, 'node_modules', '@types')];

    test.each([
      ['node', 'commonjs'],
      ['node16', 'node16'],
      ['nodenext', 'nodenext'],
      ['bundler', 'esnext'],
    ])('its types resolve under moduleResolution %s (module %s), without resolveJsonModule', (resolution, module) => {
      const r = spawnSync(process.execPath, [tsc, '--noEmit', '--strict', '--module', module, '--moduleResolution', resolution, '--target', 'es2022', '--types', 'node', ...typeRoots.slice(2), 'main.ts'], {
        cwd: consumer,
        encoding: 'utf8',
      });
      expect(r.stdout + r.stderr).toBe('');
      expect(r.status).toBe(0);
    });

    test('it compiles and runs: the constructs synthesize, paddock itself loads no Pulumi', () => {
      execFileSync(process.execPath, [tsc, '--strict', '--module', 'node16', '--moduleResolution', 'node16', '--target', 'es2022', '--skipLibCheck', ...typeRoots, 'main.ts'], { cwd: consumer, stdio: 'pipe' });
      const out = execFileSync(process.execPath, ['main.js'], { cwd: consumer, encoding: 'utf8' });
      expect(out.trim()).toMatch(/^pool-codex \d+ \.codex\/config\.toml 0 agents$/);
      const loaded = execFileSync(process.execPath, ['-e', "require('paddock'); console.log(Object.keys(require.cache).filter((f) => f.includes('@pulumi')).length)"], { cwd: consumer, encoding: 'utf8' });
      expect(loaded.trim()).toBe('0');
    });

    test('its paddock command works from the installed package', () => {
      const r = spawnSync(process.execPath, [path.join(consumer, 'node_modules', 'paddock', 'bin', 'paddock.js'), 'harness', 'presets'], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.stdout.split('\n')).toContain('codex');
    });
  });
});
