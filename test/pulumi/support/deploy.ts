/**
 * Constructs an AgentPlatform under the mocks and waits until every child is
 * registered, then joins what the SDK was asked to create (type, name, options:
 * parent, dependsOn) with what the mock monitor received (inputs, provider).
 */
import { registrations, valueOf, Registration } from './mocks'; // first: installs the mocks
import * as pulumi from '@pulumi/pulumi';
import { App, Chart } from 'cdk8s';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';
import { AgentPlatform, AgentPlatformArgs } from '../../../stacks/pulumi';
import { _forgetRuntimeClasses } from '../../../stacks/pulumi/agent-platform';
import { buildPlatform, PlatformDefinition } from '../../../stacks/platform-definition';
import { buildApp } from '../../../stacks/cdk8s/main';
import type { KubeObject } from '../../../policy/rules';

export interface Child extends Registration {
  readonly resource: pulumi.Resource;
  readonly parent?: pulumi.Resource;
  readonly dependsOn: pulumi.Resource[];
  readonly additionalSecretOutputs: string[];
  readonly urn: string;
}

export interface Deployed {
  readonly platform: AgentPlatform;
  /** The component's own registration. */
  readonly component: Registration;
  /** Every resource created under the component, in the order they were constructed. */
  readonly children: Child[];
}

export async function deploy(name: string, args: AgentPlatformArgs, opts: pulumi.ComponentResourceOptions = {}): Promise<Deployed> {
  const constructed: Array<{ resource: pulumi.Resource; type: string; name: string; opts: pulumi.ResourceOptions }> = [];
  const record: pulumi.ResourceTransformation = (a) => {
    constructed.push({ resource: a.resource, type: a.type, name: a.name, opts: a.opts });
    return undefined;
  };
  // Each deploy models a program of its own: RuntimeClasses of earlier ones are not reused.
  _forgetRuntimeClasses();
  const platform = new AgentPlatform(name, args, { ...opts, transformations: [...(opts.transformations ?? []), record] });
  const children = constructed.filter((c) => c.resource !== platform);
  const urns = await Promise.all(children.map((c) => valueOf(c.resource.urn)));
  await valueOf(platform.urn);
  const find = (type: string, n: string) => {
    const found = registrations.filter((r) => r.type === type && r.name === n);
    if (found.length !== 1) throw new Error(`expected one registration of ${type} ${n}, got ${found.length}`);
    return found[0];
  };
  return {
    platform,
    component: find('paddock:index:AgentPlatform', name),
    children: children.map((c, i) => ({
      ...find(c.type, c.name),
      resource: c.resource,
      parent: c.opts.parent,
      dependsOn: ([] as pulumi.Input<pulumi.Resource>[]).concat((c.opts.dependsOn as any) ?? []) as pulumi.Resource[],
      additionalSecretOutputs: (c.opts as pulumi.CustomResourceOptions).additionalSecretOutputs ?? [],
      urn: urns[i],
    })),
  };
}

/** What `cdk8s synth` writes: the YAML documents of every file in the app's outdir. */
export function readSynthDir(outdir: string): KubeObject[] {
  return fs
    .readdirSync(outdir)
    .filter((f) => f.endsWith('.k8s.yaml'))
    .sort()
    .flatMap((f) => parseAllDocuments(fs.readFileSync(path.join(outdir, f), 'utf8')).map((d) => d.toJSON() as KubeObject))
    .filter((o) => o);
}

export function tmpOutdir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-pulumi-'));
}

/** `cdk8s synth` of a definition, the way stacks/cdk8s/main.ts does it for the example. */
export function cdk8sSynth(def: PlatformDefinition): KubeObject[] {
  const outdir = tmpOutdir();
  try {
    const app = new App({ outdir });
    const chart = new Chart(app, 'paddock', { disableResourceNameHashes: true });
    buildPlatform(chart, 'platform', def);
    app.synth();
    return readSynthDir(outdir);
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
}

export function identity(o: { apiVersion: string; kind: string; metadata?: { namespace?: string; name?: string } }): string {
  return `${o.apiVersion} ${o.kind} ${o.metadata?.namespace ?? '-'}/${o.metadata?.name}`;
}

/** The example platform through `cdk8s synth`'s own entry point (stacks/cdk8s/main.ts), read back from its YAML. */
export function cdk8sExample(): KubeObject[] {
  const outdir = tmpOutdir();
  try {
    buildApp(outdir).synth();
    return readSynthDir(outdir);
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
}
