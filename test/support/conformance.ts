/**
 * Material we did not write, beside the clone: ../shared/conformance (CI checks it out
 * next to the repository). Test-only: nothing under policy/ or constructs/ reads it.
 */
import * as fs from 'fs';
import * as path from 'path';

export const CONFORMANCE_ROOT = path.resolve(__dirname, '..', '..', '..', 'shared', 'conformance');

/** A folder of the conformance material; a missing one fails the suite (never a silent skip). */
export function conformancePath(...parts: string[]): string {
  const p = path.join(CONFORMANCE_ROOT, ...parts);
  if (!fs.existsSync(p)) throw new Error(`${p} is missing: check out the shared conformance material beside the repository (../shared/conformance)`);
  return p;
}

import { App, Chart } from 'cdk8s';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import type { KubeObject } from '../../policy/rules';
import { buildApp } from '../../stacks/cdk8s/main';
import { buildPlatform, PlatformDefinition } from '../../stacks/platform-definition';

/** What `cdk8s synth` writes (dist/), read back from the YAML of `app` synthesized into a temporary folder. */
function synthesizedYaml(build: (outdir: string) => App): KubeObject[] {
  const outdir = fs.mkdtempSync(path.join(require('os').tmpdir(), 'paddock-conformance-'));
  try {
    build(outdir).synth();
    return fs
      .readdirSync(outdir)
      .filter((f) => f.endsWith('.k8s.yaml'))
      .sort()
      .flatMap((f) => parseAllDocuments(fs.readFileSync(path.join(outdir, f), 'utf8')).map((d) => d.toJSON() as KubeObject))
      .filter(Boolean);
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
}

/** dist/ of `npm run synth` (the example platform), plus the Job templates the pools' ConfigMaps carry. */
export function exampleDist(): KubeObject[] {
  return withJobTemplates(synthesizedYaml((outdir) => buildApp(outdir)));
}

/** A definition's objects, as `cdk8s synth` writes them, plus the Job templates. */
export function definitionDist(def: PlatformDefinition): KubeObject[] {
  return withJobTemplates(
    synthesizedYaml((outdir) => {
      const app = new App({ outdir });
      buildPlatform(new Chart(app, 'paddock', { disableResourceNameHashes: true }), 'platform', def);
      return app;
    }),
  );
}

function withJobTemplates(objects: KubeObject[]): KubeObject[] {
  const templates = objects
    .filter((o) => o.kind === 'ConfigMap' && typeof (o as any).data?.['job-template.yaml'] === 'string')
    .map((o) => parseYaml((o as any).data['job-template.yaml']) as KubeObject);
  return [...objects, ...templates];
}
