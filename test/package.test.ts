import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const root = path.join(__dirname, '..');

describe('the package as a consumer sees it', () => {
  test('npm pack ships the built library, its types, the schemas and the templates', () => {
    const [pack] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
    const files: string[] = pack.files.map((f: { path: string }) => f.path);
    expect(files).toEqual(
      expect.arrayContaining([
        'bin/paddock.js',
        'lib/index.js',
        'lib/index.d.ts',
        'lib/constructs/agent-pool.d.ts',
        'lib/cli/main.js',
        'lib/policy/schemas/task.schema.json',
        'policy/schemas/task.schema.json',
        'templates/harnesses/codex/config.toml',
        'worker-images/images.json',
      ]),
    );
    expect(files.some((f) => f.startsWith('test/') || f.startsWith('dist/'))).toBe(false);
  });

  test("`import { AgentPool, Harness } from 'paddock'` type-checks and runs in a consumer project", () => {
    const consumer = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-consumer-'));
    fs.mkdirSync(path.join(consumer, 'node_modules'));
    fs.symlinkSync(root, path.join(consumer, 'node_modules', 'paddock'), 'dir');
    fs.writeFileSync(
      path.join(consumer, 'main.ts'),
      [
        "import { App, Chart } from 'cdk8s';",
        "import { AgentPool, Harness, Platform } from 'paddock';",
        "const chart = new Chart(new App({ outdir: 'out' }), 'c', { disableResourceNameHashes: true });",
        "const pool = new AgentPool(new Platform(chart, 'p'), 'codex', { harnesses: [Harness.codex()] });",
        'const name: string = pool.objectName;',
        'console.log(name, chart.toJson().length);',
      ].join('\n'),
    );
    // cdk8s resolves from the consumer's node_modules, as it would for a real user.
    fs.symlinkSync(path.join(root, 'node_modules', 'cdk8s'), path.join(consumer, 'node_modules', 'cdk8s'), 'dir');
    fs.symlinkSync(path.join(root, 'node_modules', 'constructs'), path.join(consumer, 'node_modules', 'constructs'), 'dir');
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    execFileSync(process.execPath, [tsc, '--strict', '--module', 'node16', '--moduleResolution', 'node16', '--target', 'es2022', '--skipLibCheck', '--types', 'node', '--typeRoots', path.join(root, 'node_modules', '@types'), 'main.ts'], {
      cwd: consumer,
      stdio: 'pipe',
    });
    const out = execFileSync(process.execPath, ['main.js'], { cwd: consumer, encoding: 'utf8' });
    expect(out.trim()).toMatch(/^pool-codex \d+$/);
  });
});
