import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import { expectValidK8s } from './support/k8s-schema';

/** The README's library example must keep working: extract it, run it against this package. */
function readmeLibraryExample(): string {
  const readme = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
  const start = readme.indexOf('```ts\n');
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
