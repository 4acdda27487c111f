/**
 * `paddock egress explain POOL`: reads the synthesized YAML (never the constructs)
 * and prints the pool's effective allowlist and backend.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, Chart } from 'cdk8s';
import { AgentPool, AgentTask, EgressAllowlist, Harness, Platform } from '../../constructs';
import { explainEgress, PoolEgress } from '../../cli/egress-explain';
import { main } from '../../cli/main';
import { buildApp } from '../../stacks/cdk8s/main';
import { keyedPool } from '../support/synth';

/** Model keys the agents hold themselves, so a pool's egress lists its provider (through the model gateway it would not). */
const EXPOSED = { exposeToAgent: true } as const;

const root = path.join(__dirname, '..', '..');

/** Synthesizes `build`'s app into a fresh directory, as `cdk8s synth` does. */
function synthTo(build: (app: App) => void): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-explain-'));
  const app = new App({ outdir: dir });
  build(app);
  app.synth();
  return dir;
}

async function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(['egress', ...args], { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

describe('paddock egress explain', () => {
  const exampleDir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-explain-example-'));
  buildApp(exampleDir).synth();

  test('the example platform: codex reaches its git host and the registries through the proxy, its provider through the model gateway', async () => {
    const { code, stdout, stderr } = await run('explain', 'codex', '--dir', exampleDir);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const lines = stdout.split('\n');
    expect(lines[0]).toBe('Pool "codex" (namespace paddock)');
    expect(lines[1]).toBe('  allowlist "codex": backend proxy (egress proxy http://egress-proxy-codex.paddock.svc:3128)');
    expect(stdout).toContain('HTTPS_PROXY=HTTP_PROXY=http://egress-proxy-codex.paddock.svc:3128');
    const row = (host: string) => lines.find((l) => l.trim().startsWith(`${host} `))?.trim().split(/\s{2,}/);
    expect(row('api.openai.com')).toEqual(['api.openai.com', 'https 443', 'model gateway', "http://paddock-model-gateway.paddock.svc:8080/codex holds OPENAI_API_KEY; the pool's pods cannot reach the host"]);
    expect(row('github.com')).toEqual(['github.com', 'https 443', 'proxy', 'task summarize-readme source hello-world (pool codex)']);
    expect(row('registry.npmjs.org')).toEqual(['registry.npmjs.org', 'https 443', 'proxy', 'rule of allowlist codex']);
    // Each example pool has its own allowlist: codex cannot reach Claude's provider.
    expect(row('api.anthropic.com')).toBeUndefined();
    expect(stdout).toMatch(/DNS: pods k8s-app=kube-dns in kube-system\s+UDP,TCP 53\s+NetworkPolicy/);
  });

  test('--json: the allowlists as synthesized, the proxy and the harness hosts', async () => {
    const { code, stdout } = await run('explain', 'codex', '--dir', exampleDir, '--json');
    expect(code).toBe(0);
    const e = JSON.parse(stdout) as PoolEgress;
    expect(e).toMatchObject({
      pool: 'codex',
      namespace: 'paddock',
      proxy: { url: 'http://egress-proxy-codex.paddock.svc:3128' },
      harnessHosts: [{ host: 'api.openai.com', harness: 'codex' }],
      gateway: { url: 'http://paddock-model-gateway.paddock.svc:8080/codex', providers: [{ host: 'api.openai.com', env: 'OPENAI_API_KEY' }] },
    });
    expect(e.allowlists.map((a) => [a.name, a.backend, a.pools])).toEqual([['codex', 'proxy', ['codex']]]);
    // The provider is the gateway's to reach: the pool's allowlist leaves it out.
    expect(e.allowlists[0].hosts.map((h) => h.host)).toEqual(['github.com', 'registry.npmjs.org', 'files.pythonhosted.org', 'pypi.org'].sort());
    expect(e.proxy!.noProxy).toContain('paddock-controller.paddock.svc');
  });

  test('every backend, CIDR rules, hosts a networkpolicy allowlist cannot enforce, a pool without an allowlist', async () => {
    const dir = synthTo((app) => {
      const chart = new Chart(app, 'agents', { disableResourceNameHashes: true });
      const platform = new Platform(chart, 'platform', { namespace: 'agents' });
      const codex = keyedPool(platform, 'codex', { harnesses: [Harness.codex()] }, EXPOSED);
      codex.allowEgressTo(new EgressAllowlist(platform, 'egress-codex', { name: 'codex', backend: 'cilium', rules: [{ host: '.githubusercontent.com' }] }));
      codex.allowEgressTo(new EgressAllowlist(platform, 'db', { backend: 'networkpolicy', rules: [{ cidr: '10.20.0.0/16', ports: [5432] }] }));
      new AgentTask(platform, 'fix', { pool: codex, prompt: 'p', sources: [{ url: 'https://gitlab.example.com/org/repo.git' }] });
      keyedPool(platform, 'claude', { harnesses: [Harness.claudeCode()] }, EXPOSED).allowEgressTo(new EgressAllowlist(platform, 'internet', { backend: 'networkpolicy', rules: [{ cidr: '0.0.0.0/0', ports: [443] }] }));
      keyedPool(platform, 'gemini', { harnesses: [Harness.geminiCli()] }, EXPOSED);
    });
    const codex = await run('explain', 'codex', '--dir', dir);
    expect(codex.code).toBe(0);
    expect(codex.stdout).toContain('allowlist "codex": backend cilium (CiliumNetworkPolicy egress-codex)');
    expect(codex.stdout).toContain('allowlist "db": backend networkpolicy (NetworkPolicy egress-db)');
    expect(codex.stdout).not.toContain('HTTPS_PROXY');
    expect(codex.stdout).toMatch(/\.githubusercontent\.com \(and subdomains\)\s+https 443\s+cilium toFQDNs\s+rule of allowlist codex/);
    expect(codex.stdout).toMatch(/gitlab\.example\.com\s+https 443\s+cilium toFQDNs\s+task fix source repo \(pool codex\)/);
    expect(codex.stdout).toMatch(/10\.20\.0\.0\/16\s+TCP 5432\s+NetworkPolicy\s+rule of allowlist db/);
    // The networkpolicy allowlist cannot enforce the pool's hosts, but the cilium one does.
    expect(codex.stdout).not.toContain('NOT allowed');
    const json = explainEgress({ pool: 'codex', dir });
    expect(json.allowlists.find((a) => a.name === 'db')!.unenforced!.map((h) => h.host)).toEqual(['api.openai.com', 'gitlab.example.com']);

    const claude = await run('explain', 'claude', '--dir', dir);
    expect(claude.stdout).toMatch(/Needed but NOT allowed \(backend networkpolicy[^\n]*\n {2}api\.anthropic\.com 443 {2}harness claude-code \(pool claude\)\n$/);

    const gemini = await run('explain', 'gemini', '--dir', dir);
    expect(gemini.stdout).toBe(
      'Pool "gemini" (namespace agents)\n' +
        '  uses no egress allowlist: its pods reach nothing outside the namespace, not even DNS.\n' +
        '  its harnesses need: generativelanguage.googleapis.com (harness gemini-cli)\n' +
        '  allow them with pool.allowEgressTo(new EgressAllowlist(platform, "...")).\n',
    );
  });

  test('a pool in several namespaces needs --namespace', async () => {
    const dir = synthTo((app) => {
      for (const ns of ['team-a', 'team-b']) {
        const chart = new Chart(app, ns, { disableResourceNameHashes: true });
        keyedPool(new Platform(chart, 'platform', { namespace: ns }), 'codex', { harnesses: [Harness.codex()] }, EXPOSED);
      }
    });
    expect(await run('explain', 'codex', '--dir', dir)).toMatchObject({ code: 2, stderr: 'paddock egress explain: pool "codex" exists in several namespaces (team-a, team-b); pass --namespace\n' });
    expect(explainEgress({ pool: 'codex', dir, namespace: 'team-b' }).namespace).toBe('team-b');
  });

  test.each([
    [['explain', 'codexx', '--dir', 'DIR'], /^paddock egress explain: no pool "codexx" in DIR; pools: claude \(namespace paddock\), codex \(namespace paddock\)\n$/],
    [['explain', 'codex', '--dir', '/nonexistent'], /^paddock egress explain: no directory "\/nonexistent": synthesize first \(npm run synth writes dist\/\), or pass --dir\n$/],
    [['explain', '--dir', 'DIR'], /^paddock egress explain: takes one pool name, e\.g\. paddock egress explain codex\n$/],
    [['explain', 'codex', '--out', 'x'], /^paddock egress explain: unknown option --out; known: --dir, --namespace, --json\n$/],
    [['explain', 'codex', '--dir'], /^paddock egress explain: --dir needs a value\n$/],
    [['explane', 'codex'], /^paddock: unknown egress command "explane"; use "explain"\nUsage:\n  paddock egress explain POOL/],
  ])('%j exits 2: %s', async (args, message) => {
    const r = await run(...args.map((a) => a.replace('DIR', exampleDir)));
    expect(r.code).toBe(2);
    expect(r.stderr.replace(exampleDir, 'DIR')).toMatch(message);
  });

  test('dispatched by the paddock CLI, as a process (bin/paddock.js, the built package)', () => {
    const r = spawnSync(process.execPath, [path.join(root, 'bin', 'paddock.js'), 'egress', 'explain', 'claude', '--dir', exampleDir], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/api\.anthropic\.com\s+https 443\s+model gateway\s+http:\/\/paddock-model-gateway\.paddock\.svc:8080\/claude holds ANTHROPIC_API_KEY/);
  });

  test('dispatched by main()', async () => {
    let out = '';
    expect(await main(['egress', '--help'], { stdout: (t) => (out += t), stderr: () => undefined })).toBe(0);
    expect(out).toMatch(/paddock egress explain POOL \[--dir DIR\] \[--namespace NS\] \[--json\]/);
  });
});
