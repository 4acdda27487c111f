/**
 * Issue 11, item 5: peer linters built from Go modules run on dist/.
 * - kubeconform in strict mode, with schemas generated from this API server's own OpenAPI
 *   (not a downloaded schema set): every object is valid, none skipped.
 * - kube-score: no finding left, except the checks that test/cluster/kube-score.json
 *   turns off, each with its reason.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';
import { cluster, DIST, get } from './support/cluster';
import { writeKubeconformSchemas } from './support/openapi-schemas';

jest.setTimeout(120_000);

const KUBE_SCORE_CONFIG = path.join(__dirname, 'kube-score.json');

describe('peer linters on dist/ (built from Go modules; schemas from the running kube-apiserver)', () => {
  const docs = parseAllDocuments(fs.readFileSync(DIST, 'utf8')).map((d) => d.toJSON()).filter(Boolean) as any[];

  test('kubeconform -strict with schemas from this API server\'s OpenAPI: every object valid, none skipped', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-kubeconform-'));
    const openapi = await get('/openapi/v2');
    const kinds = new Set(docs.map((o) => `${o.apiVersion}/${o.kind}`));
    const location = writeKubeconformSchemas(openapi, dir, kinds);
    const r = spawnSync(cluster().tools.kubeconform, ['-strict', '-summary', '-output', 'json', '-schema-location', location, DIST], { encoding: 'utf8' });
    const report = JSON.parse(r.stdout);
    expect(report.resources ?? []).toEqual([]); // only failures are listed
    expect(report.summary).toEqual({ valid: docs.length, invalid: 0, errors: 0, skipped: 0 });
    expect(r.status).toBe(0);

    // The schemas are strict: a misspelt field is caught.
    const bad = path.join(dir, 'bad.yaml');
    const deployment = JSON.parse(JSON.stringify(docs.find((o) => o.kind === 'Deployment')));
    deployment.spec.template.spec.containers[0].imagePullPolicyy = 'Always';
    fs.writeFileSync(bad, JSON.stringify(deployment));
    const caught = spawnSync(cluster().tools.kubeconform, ['-strict', '-schema-location', location, bad], { encoding: 'utf8' });
    expect(caught.status).toBe(1);
    expect(caught.stdout).toMatch(/imagePullPolicyy/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('kube-score: no finding on dist/ but the checked-in, justified exceptions, each still needed', () => {
    const config = JSON.parse(fs.readFileSync(KUBE_SCORE_CONFIG, 'utf8')) as { ignore: Record<string, string> };
    for (const why of Object.values(config.ignore)) expect(why.length).toBeGreaterThan(80);
    const score = (extra: string[]) => {
      const r = spawnSync(cluster().tools['kube-score'], ['score', '--output-format', 'json', ...extra, DIST], { encoding: 'utf8' });
      const findings: string[] = [];
      for (const o of JSON.parse(r.stdout) as any[]) {
        for (const c of o.checks) if (!c.skipped && c.grade < 10) findings.push(`${c.check.id} ${o.object_name}`);
      }
      return { code: r.status, findings };
    };
    const scored = score(Object.keys(config.ignore).flatMap((t) => ['--ignore-test', t]));
    expect(scored.findings).toEqual([]);
    expect(scored.code).toBe(0);
    // Every exception is still needed: without it kube-score finds something.
    const all = score([]).findings.map((f) => f.split(' ')[0]);
    expect(Object.keys(config.ignore).filter((check) => !all.includes(check))).toEqual([]);
  });
});
