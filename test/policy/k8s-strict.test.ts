/**
 * dist/ (and a wider definition) against independent strict Kubernetes 1.30 schemas
 * (../shared/conformance/k8s: yannh/kubernetes-json-schema's v1.30.10-standalone-strict,
 * `additionalProperties: false` everywhere): a second opinion next to our own
 * generated schema (test/support/k8s-schema.ts).
 */
import * as fs from 'fs';
import * as path from 'path';
import Ajv, { ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type { KubeObject } from '../../policy/rules';
import { conformancePath, definitionDist, exampleDist } from '../support/conformance';
import { wider } from '../pulumi/support/definitions';

const dir = conformancePath('k8s', 'v1.30.10-standalone-strict');
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addFormat('int32', true);
ajv.addFormat('int64', true);
const validators = new Map<string, ValidateFunction>();

/** deployment-apps-v1.json, configmap-v1.json, networkpolicy-networking-v1.json, role-rbac-v1.json ... */
function schemaFile(o: KubeObject): string {
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
  const short = group.split('.')[0];
  return `${o.kind.toLowerCase()}${short ? `-${short}` : ''}-${version}.json`;
}

function validate(o: KubeObject): string[] {
  const file = schemaFile(o);
  if (!validators.has(file)) validators.set(file, ajv.compile(JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'))));
  const v = validators.get(file)!;
  if (v(o as unknown)) return [];
  return (v.errors ?? []).map((e) => `${o.kind} "${o.metadata?.name}": ${e.instancePath || '(root)'} ${e.message}${e.params && 'additionalProperty' in e.params ? ` (${e.params.additionalProperty})` : ''}`);
}

describe('synthesized objects against the standalone-strict Kubernetes 1.30 schemas', () => {
  const samples: Array<[string, KubeObject[]]> = [
    ['dist/ (the example platform)', exampleDist()],
    ['a wider definition (warm pool, kata/none/custom sandboxes, file and git grants)', definitionDist(wider)],
  ];

  test.each(samples)('%s: every built-in object is valid', (_label, objects) => {
    const builtIn = objects.filter((o) => !o.apiVersion.includes('cilium.io'));
    for (const o of builtIn) expect(fs.existsSync(path.join(dir, schemaFile(o)))).toBe(true);
    expect(builtIn.flatMap(validate)).toEqual([]);
    expect(builtIn.length).toBeGreaterThan(15);
  });

  test('the schemas are strict: an unknown field and a wrong type are caught', () => {
    const deployment = exampleDist().find((o) => o.kind === 'Deployment')!;
    const broken = JSON.parse(JSON.stringify(deployment));
    broken.spec.template.spec.containers[0].imagePullPolicyy = 'Always';
    broken.spec.replicas = 'two';
    const problems = validate(broken).join('\n');
    expect(problems).toMatch(/must NOT have additional properties \(imagePullPolicyy\)/);
    expect(problems).toMatch(/\/spec\/replicas must be integer/);
  });
});
