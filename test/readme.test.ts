import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import { expectValidK8s } from './support/k8s-schema';

/** The README's library example must keep working: extract it, run it against this package. */
function readmeLibraryExample(after = ''): string {
  const readme = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
  const start = readme.indexOf('```ts\n', readme.indexOf(after));
  expect(start).toBeGreaterThan(0);
  return readme.slice(start + 6, readme.indexOf('\n```\n', start));
}

test('the README library example synthesizes a valid platform', () => {
  const source = readmeLibraryExample();
  expect(source).toContain("from 'paddock'");
  const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } }).outputText;
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-readme-'));
  const previous = process.env.CDK8S_OUTDIR;
  process.env.CDK8S_OUTDIR = outdir;
  try {
    const requireFromExample = (id: string) => (id === 'paddock' ? require('../index') : require(id));
    new Function('require', 'exports', js)(requireFromExample, {});
  } finally {
    if (previous === undefined) delete process.env.CDK8S_OUTDIR;
    else process.env.CDK8S_OUTDIR = previous;
  }
  const [file] = fs.readdirSync(outdir);
  const objects = parseAllDocuments(fs.readFileSync(path.join(outdir, file), 'utf8')).map((d) => d.toJS());
  expectValidK8s(objects);
  expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(expect.arrayContaining(['Deployment/pool-codex', 'ConfigMap/task-fix-readme', 'NetworkPolicy/egress-web']));
});

test('the README cdk8s-plus example synthesizes: the dashboard reaches the controller and DNS', () => {
  const source = readmeLibraryExample('### Compose with cdk8s-plus');
  expect(source).toContain("from 'cdk8s-plus-30'");
  const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } }).outputText;
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-readme-kplus-'));
  const previous = process.env.CDK8S_OUTDIR;
  process.env.CDK8S_OUTDIR = outdir;
  try {
    new Function('require', 'exports', js)((id: string) => (id === 'paddock' ? require('../index') : require(id)), {});
  } finally {
    if (previous === undefined) delete process.env.CDK8S_OUTDIR;
    else process.env.CDK8S_OUTDIR = previous;
  }
  const [file] = fs.readdirSync(outdir);
  const objects = parseAllDocuments(fs.readFileSync(path.join(outdir, file), 'utf8')).map((d) => d.toJS());
  expectValidK8s(objects);
  const policies = objects.filter((o) => o.kind === 'NetworkPolicy' && !/^(paddock-|pool-|egress-)/.test(o.metadata.name));
  const ingressToController = policies.find((p) => p.spec.podSelector.matchLabels?.['app.kubernetes.io/component'] === 'controller');
  expect(ingressToController.spec.ingress[0].ports).toEqual([{ port: 8080, protocol: 'TCP' }]);
  expect(policies.some((p) => JSON.stringify(p.spec.egress ?? []).includes('"k8s-app":"kube-dns"'))).toBe(true);
});
