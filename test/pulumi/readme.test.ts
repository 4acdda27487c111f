/**
 * The README's "Deploy with Pulumi" library example, run against Pulumi's mocks
 * (pulumi.runtime.setMocks), no engine or cluster: it must build a platform whose
 * Kubernetes objects all use the example's provider. Skipped while the README has
 * no such section.
 */
import { registrations, valueOf } from './support/mocks'; // first: installs the mocks
import * as pulumi from '@pulumi/pulumi';
import * as fs from 'fs';
import * as path from 'path';
import * as ts from 'typescript';

const SECTION = '## Deploy with Pulumi';

/** The first ```typescript block of the section. */
function pulumiExample(readme: string): string | undefined {
  const section = readme.indexOf(`\n${SECTION}\n`);
  if (section < 0) return undefined;
  const next = readme.indexOf('\n## ', section + SECTION.length + 1);
  const body = readme.slice(section, next < 0 ? undefined : next);
  const start = body.indexOf('```typescript\n');
  if (start < 0) return undefined;
  return body.slice(start + '```typescript\n'.length, body.indexOf('\n```', start + 1));
}

const readme = fs.readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
const example = pulumiExample(readme);

(example ? describe : describe.skip)('the README "Deploy with Pulumi" example under Pulumi mocks', () => {
  test('builds the platform from `paddock/pulumi`, with every object on the given provider', async () => {
    const source = example as string;
    expect(source).toContain("from 'paddock/pulumi'");
    const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } }).outputText;
    pulumi.runtime.setAllConfig({ 'paddock:openaiApiKey': 'sk-TESTONLY-readme-0123456789' }, ['paddock:openaiApiKey']);
    const exports: Record<string, pulumi.Output<unknown>> = {};
    const requireFromExample = (id: string) => (id === 'paddock/pulumi' ? require('../../stacks/pulumi') : require(id));
    new Function('require', 'exports', js)(requireFromExample, exports);

    expect(await valueOf(exports.controllerUrl)).toMatch(/^http:\/\/paddock-controller\.[a-z0-9-]+\.svc$/);
    await pulumi.runtime.disconnect();
    const provider = registrations.find((r) => r.type === 'pulumi:providers:kubernetes')!;
    const objects = registrations.filter((r) => r.type.startsWith('kubernetes:'));
    expect(objects.map((r) => `${r.inputs.kind}/${r.inputs.metadata.name}`)).toEqual(expect.arrayContaining(['Deployment/pool-codex', 'Secret/openai-api']));
    for (const r of objects) expect(r.provider).toBe(`urn:pulumi:test::paddock::pulumi:providers:kubernetes::${provider.name}::${provider.name}-id`);
    pulumi.runtime.setAllConfig({}, []);
  });
});
