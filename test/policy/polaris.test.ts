/**
 * Fairwinds Polaris' checks (../shared/conformance/polaris: checks/*.yaml, severities from
 * default.yaml) over the synthesized pods of dist/ and a wider definition. Each finding is
 * fixed or justified in polaris-findings.yaml beside this file; the test fails on any
 * finding not listed there and on any listed one that no longer occurs.
 *
 * Runs the checks that are plain JSON Schema. Checks written as Go templates
 * (schemaString, `{{ }}`) or that look up other objects (additionalSchemaStrings) are
 * listed as not run, with the rule of ours that covers each.
 */
import * as fs from 'fs';
import * as path from 'path';
import Ajv2019 from 'ajv/dist/2019';
import { parse } from 'yaml';
import { goRegExp } from '../../policy/cilium';
import { podTemplateOf, type KubeObject } from '../../policy/rules';
import { wider } from '../pulumi/support/definitions';
import { conformancePath, definitionDist, exampleDist } from '../support/conformance';

interface Check {
  readonly id: string;
  readonly target: string;
  readonly schemaTarget?: string;
  readonly schema?: object;
  readonly schemaString?: string;
  readonly additionalSchemaStrings?: object;
  readonly controllers?: { include?: string[]; exclude?: string[] };
}

interface Justified {
  readonly severity: string;
  readonly objects: string[];
  readonly justification: string;
}

const root = conformancePath('polaris');
const severities = (parse(fs.readFileSync(path.join(root, 'default.yaml'), 'utf8')) as { checks: Record<string, string> }).checks;
const checks: Check[] = fs
  .readdirSync(path.join(root, 'checks'))
  .filter((f) => f.endsWith('.yaml'))
  .sort()
  .map((f) => ({ id: f.replace(/\.yaml$/, ''), ...(parse(fs.readFileSync(path.join(root, 'checks', f), 'utf8')) as object) }) as Check);
const runnable = (c: Check) => c.schema !== undefined && !c.additionalSchemaStrings && !JSON.stringify(c.schema).includes('{{');
const expected = parse(fs.readFileSync(path.join(__dirname, 'polaris-findings.yaml'), 'utf8')) as { findings: Record<string, Justified>; notRun: Record<string, string> };

/** An empty YAML `required:` (null) means no required field to Polaris' Go validator. */
function withoutNullRequired(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutNullRequired);
  if (!node || typeof node !== 'object') return node;
  return Object.fromEntries(Object.entries(node).filter(([k, v]) => !(k === 'required' && v === null)).map(([k, v]) => [k, withoutNullRequired(v)]));
}

const WORKLOADS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'Job', 'CronJob', 'Pod']);

function findings(objects: readonly KubeObject[]): Map<string, Set<string>> {
  // Polaris is written in Go: its patterns are RE2 ((?i) and the like).
  const ajv = new Ajv2019({ strict: false, allErrors: true, code: { regExp: goRegExp } });
  const found = new Map<string, Set<string>>();
  const add = (id: string, what: string) => found.set(id, (found.get(id) ?? new Set()).add(what));
  for (const check of checks.filter(runnable)) {
    const { $schema: _ignored, ...schema } = check.schema as Record<string, unknown>;
    const valid = ajv.compile(withoutNullRequired(schema) as object);
    for (const o of objects) {
      // Task Jobs by task: the spec hash in their names changes with every edit of the example.
      const name = `${o.kind}/${(o.metadata?.name ?? '').replace(o.kind === 'Job' ? /-[0-9a-f]{10}$/ : /$^/, '-<spec hash>')}`;
      const template = podTemplateOf(o);
      if (check.target.includes('/')) {
        const [group, kind] = check.target.split('/');
        if (o.kind === kind && (o.apiVersion.includes('/') ? o.apiVersion.split('/')[0] : '') === group && !valid(o)) add(check.id, name);
        continue;
      }
      if (!template?.spec || !WORKLOADS.has(o.kind)) continue;
      const spec = template.spec;
      switch (check.target) {
        case 'Controller':
          if (check.controllers?.include && !check.controllers.include.includes(o.kind)) break;
          if (check.controllers?.exclude?.includes(o.kind)) break;
          if (!valid(o)) add(check.id, name);
          break;
        case 'PodTemplate':
          if (!valid(template)) add(check.id, name);
          break;
        case 'PodSpec':
          if (!valid(spec)) add(check.id, name);
          break;
        case 'Container':
          for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
            const subject = check.schemaTarget === 'PodSpec' ? { ...spec, initContainers: [], containers: [c] } : c;
            if (!valid(subject)) add(check.id, `${name} container ${c.name}`);
          }
          break;
      }
    }
  }
  return found;
}

describe("Polaris' checks over the synthesized pods", () => {
  // What gets applied: the pools' Job templates (slots such as ${IMAGE}) are checked as the task Jobs filled from them.
  const objects = [...exampleDist(), ...definitionDist(wider)].filter((o) => !(o.metadata?.name ?? '').includes('${'));
  const actual = findings(objects);

  test('the checks are there and most of them run', () => {
    expect(checks.length).toBeGreaterThan(30);
    expect(checks.filter(runnable).length).toBeGreaterThanOrEqual(20);
  });

  test('every finding is listed in polaris-findings.yaml with its severity and a justification, and nothing listed is stale', () => {
    const got = Object.fromEntries([...actual.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([id, set]) => [id, { severity: severities[id], objects: [...set].sort() }]));
    const listed = Object.fromEntries(Object.entries(expected.findings).map(([id, f]) => [id, { severity: f.severity, objects: [...f.objects].sort() }]));
    expect(got).toEqual(listed);
    for (const [id, f] of Object.entries(expected.findings)) expect([id, f.justification.trim().length > 40]).toEqual([id, true]);
  });

  test('no finding of severity "danger"', () => {
    expect([...actual.keys()].filter((id) => severities[id] === 'danger')).toEqual([]);
  });

  test('every check that does not run here is listed, with what covers it instead', () => {
    const skipped = checks.filter((c) => !runnable(c)).map((c) => c.id).sort();
    expect(Object.keys(expected.notRun).sort()).toEqual(skipped);
    for (const reason of Object.values(expected.notRun)) expect(reason.trim().length).toBeGreaterThan(20);
  });

  test('the runner is not vacuous: a root, privileged container with hostPath trips the matching checks', () => {
    const bad: KubeObject = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'bad' },
      spec: { template: { metadata: { labels: { a: 'b' } }, spec: { hostNetwork: true, volumes: [{ name: 'h', hostPath: { path: '/' } }], containers: [{ name: 'c', image: 'x:latest', securityContext: { privileged: true, runAsUser: 0 } }] } } },
    };
    const f = findings([bad]);
    for (const id of ['hostNetworkSet', 'hostPathSet', 'runAsPrivileged', 'runAsRootAllowed', 'tagNotSpecified']) expect([id, f.has(id)]).toEqual([id, true]);
  });
});
