/**
 * Issue 11, a real `pulumi up`: the repository's Pulumi program (Pulumi.yaml ->
 * lib/stacks/pulumi/program.js) deployed by the Pulumi engine built from
 * github.com/pulumi/pulumi/pkg/v3, with the Kubernetes provider built from
 * github.com/pulumi/pulumi-kubernetes/provider/v4 and a Node.js language host of our own
 * (test/cluster/tools/pulumi/language-nodejs: Pulumi's is not served as a module), into the
 * real API server. Local file backend, passphrase secrets, plugins from PATH only (automatic
 * plugin acquisition off, so nothing is downloaded). Outputs are right, a second preview
 * shows no changes, the credential values stay secret in the state, `pulumi destroy`
 * leaves nothing of Paddock behind. Pods are run by kwok (a fake kubelet).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { api, cluster, deleteNamespace, get, list, NS, ROOT, until } from './support/cluster';

jest.setTimeout(600_000);

const PULUMI_NS = 'paddock-pulumi';
const OPENAI = 'sk-openai-cluster-pulumi-0123456789';
const ANTHROPIC = 'sk-ant-cluster-pulumi-0123456789';

describe('a real pulumi up of Pulumi.yaml against the real API server (engine, provider and language host built from Go modules)', () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-pulumi-'));
  const project = path.join(work, 'project');
  const bin = path.join(work, 'bin');
  let env: NodeJS.ProcessEnv;

  const pulumi = (args: string[], timeoutMs = 420_000) => {
    const r = spawnSync(path.join(bin, 'pulumi'), [...args, '--non-interactive'], { cwd: project, env, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
    return { code: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : ''), text: `${r.stdout}\n${r.stderr}` };
  };
  const ok = (args: string[]) => {
    const r = pulumi(args);
    if (r.code !== 0) throw new Error(`pulumi ${args.join(' ')} exited ${r.code}\n${r.text}`);
    return r;
  };

  beforeAll(async () => {
    const c = cluster();
    // The engine finds its language host and the provider on PATH (next to itself).
    fs.mkdirSync(bin);
    fs.symlinkSync(c.tools.pulumi, path.join(bin, 'pulumi'));
    fs.symlinkSync(c.tools['pulumi-language-nodejs'], path.join(bin, 'pulumi-language-nodejs'));
    fs.symlinkSync(c.tools['pulumi-resource-kubernetes'], path.join(bin, 'pulumi-resource-kubernetes'));
    // The repository's project: its Pulumi.yaml as is, the built program and the installed packages.
    fs.mkdirSync(project);
    fs.copyFileSync(path.join(ROOT, 'Pulumi.yaml'), path.join(project, 'Pulumi.yaml'));
    for (const entry of ['lib', 'node_modules', 'package.json', 'policy', 'templates', 'worker-images']) fs.symlinkSync(path.join(ROOT, entry), path.join(project, entry));
    env = {
      PATH: [bin, path.dirname(process.execPath), process.env.PATH].join(path.delimiter),
      HOME: work,
      PULUMI_HOME: path.join(work, 'pulumi-home'),
      PULUMI_BACKEND_URL: `file://${path.join(work, 'state')}`,
      PULUMI_CONFIG_PASSPHRASE: 'cluster-test-passphrase',
      PULUMI_SKIP_UPDATE_CHECK: 'true',
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: 'true',
      PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK: 'true',
      KUBECONFIG: c.adminKubeconfig,
    };
    fs.mkdirSync(path.join(work, 'state'));
    await deleteNamespace(PULUMI_NS);
    // A clean slate, so that whatever is left after destroy is Pulumi's leftover: an earlier
    // suite's kubectl apply of dist/ made namespace paddock and cluster-scoped objects of the same names.
    await deleteNamespace(NS);
    // Cluster-scoped objects that an earlier suite's kubectl apply of dist/ left (same names).
    for (const rc of await list('/apis/node.k8s.io/v1/runtimeclasses', 'app.kubernetes.io/managed-by=paddock')) await api('DELETE', `/apis/node.k8s.io/v1/runtimeclasses/${rc.metadata.name}`);
  });
  afterAll(() => {
    fs.rmSync(work, { recursive: true, force: true });
  });

  test('the engine, the language host and the provider are the ones built here, and no plugin is downloaded', () => {
    expect(ok(['version']).stdout.trim()).toBe('v3.274.1');
    const about = pulumi(['plugin', 'ls', '--json']);
    expect(about.code).toBe(0);
    // Nothing was installed into PULUMI_HOME: the plugins come from PATH.
    expect(JSON.parse(about.stdout || 'null') ?? []).toEqual([]);
  });

  test('pulumi up: outputs right; the objects are in the cluster; a second preview shows no changes', async () => {
    ok(['stack', 'init', 'cluster-test']);
    ok(['config', 'set', 'namespace', PULUMI_NS]);
    ok(['config', 'set', '--secret', 'openaiApiKey', OPENAI]);
    ok(['config', 'set', '--secret', 'anthropicApiKey', ANTHROPIC]);
    const up = pulumi(['up', '--yes', '--skip-preview', '--diff']);
    if (up.code !== 0) throw new Error(`pulumi up exited ${up.code}\n${up.text}`);
    expect(up.text).not.toMatch(/downloading|installing plugin/i);
    const outputs = JSON.parse(ok(['stack', 'output', '--json', '--show-secrets']).stdout);
    expect(outputs).toMatchObject({
      namespace: PULUMI_NS,
      poolNames: ['codex', 'claude'],
      controllerService: 'paddock-controller',
      controllerUrl: `http://paddock-controller.${PULUMI_NS}.svc`,
      credentialSecretNames: expect.arrayContaining(['openai-api', 'anthropic-api']),
    });
    // The codex pool runs its task as a Job; the claude pool is warm, its workers run review-spoon-knife.
    expect(Object.keys(outputs.taskJobNames)).toEqual(['summarize-readme']);
    expect(await get(`/api/v1/namespaces/${PULUMI_NS}/configmaps/task-review-spoon-knife`)).toBeDefined();
    // In the cluster, by the provider's server-side apply.
    const ns = await get(`/api/v1/namespaces/${PULUMI_NS}`);
    expect(ns.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
    const controller = await get(`/apis/apps/v1/namespaces/${PULUMI_NS}/deployments/paddock-controller`);
    expect(controller.status.readyReplicas).toBe(1);
    for (const job of Object.values(outputs.taskJobNames) as string[]) expect(await get(`/apis/batch/v1/namespaces/${PULUMI_NS}/jobs/${job}`)).toBeDefined();
    const secret = await get(`/api/v1/namespaces/${PULUMI_NS}/secrets/anthropic-api`);
    expect(Buffer.from(secret.data.ANTHROPIC_API_KEY, 'base64').toString()).toBe(ANTHROPIC);

    const preview = pulumi(['preview', '--expect-no-changes', '--diff']);
    if (preview.code !== 0) throw new Error(`second pulumi preview is not empty (exit ${preview.code})\n${preview.text}`);
    expect(preview.text).not.toMatch(/~ |\+ |- /);
  });

  test('the credential values stay secret in the state and in the outputs', () => {
    const state = ok(['stack', 'export']).stdout;
    expect(state).not.toContain(OPENAI);
    expect(state).not.toContain(ANTHROPIC);
    expect(state).not.toContain(Buffer.from(ANTHROPIC).toString('base64'));
    expect(state).toContain('4dabf18193072939515e22adb298388d'); // Pulumi's secret signature: values are ciphertext
    const raw = fs.readdirSync(path.join(work, 'state'), { recursive: true }).map(String);
    for (const f of raw) {
      const p = path.join(work, 'state', f);
      if (fs.statSync(p).isFile()) expect(fs.readFileSync(p, 'utf8')).not.toContain(ANTHROPIC);
    }
    const shown = ok(['stack', 'output', '--json']).stdout;
    expect(shown).not.toContain(ANTHROPIC);
  });

  test('pulumi destroy leaves nothing of Paddock behind', async () => {
    const destroy = pulumi(['destroy', '--yes', '--skip-preview']);
    if (destroy.code !== 0) throw new Error(`pulumi destroy exited ${destroy.code}\n${destroy.text}`);
    await until(`namespace ${PULUMI_NS} gone`, async () => !(await get(`/api/v1/namespaces/${PULUMI_NS}`)), 120_000);
    const managed = 'app.kubernetes.io/managed-by=paddock';
    for (const url of ['/apis/node.k8s.io/v1/runtimeclasses', '/apis/rbac.authorization.k8s.io/v1/clusterroles', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', '/api/v1/namespaces']) {
      expect((await list(url, managed)).map((o) => `${url} ${o.metadata.name}`)).toEqual([]);
    }
    const resources = JSON.parse(ok(['stack', 'export']).stdout).deployment.resources ?? [];
    expect(resources.filter((r: any) => !r.type.startsWith('pulumi:'))).toEqual([]);
  });
});
