import { App, Chart, Testing } from 'cdk8s';
import { Construct } from 'constructs';
import { AgentPool, AgentPoolProps, CredentialGrant, CredentialSecret, PaddockSynthError, Platform, PlatformProps, synthesize } from '../../constructs';
import type { KubeObject } from '../../policy/rules';

/** A fresh chart (no outdir writes) and a platform in it. */
export function newPlatform(props: PlatformProps = {}): { app: App; chart: Chart; platform: Platform } {
  const app = Testing.app();
  const chart = new Chart(app, 'test', { disableResourceNameHashes: true });
  const platform = new Platform(chart, 'platform', props);
  return { app, chart, platform };
}

/** Synthesize with every validation, like `cdk8s synth`. */
export function synth(chart: Chart): KubeObject[] {
  return synthesize(chart);
}

export function find(objects: KubeObject[], kind: string, name: string): any {
  const found = objects.find((o) => o.kind === kind && o.metadata?.name === name);
  if (!found) {
    throw new Error(`no ${kind} "${name}" among: ${objects.map((o) => `${o.kind}/${o.metadata?.name}`).join(', ')}`);
  }
  return found;
}

/** The problems synthesis reports (the security policy and other validations); empty when it succeeds. */
export function synthProblems(chart: Chart): string[] {
  try {
    synth(chart);
  } catch (e) {
    if (e instanceof PaddockSynthError) return e.problems;
    throw e;
  }
  return [];
}

/**
 * An AgentPool whose harnesses' credential variables (credentialEnv) are granted from
 * the Secret `<pool>-keys`, as a real platform grants them (an ungranted one fails synthesis):
 * held by the model gateway, unless `grant` says exposeToAgent.
 */
export function keyedPool(scope: Construct, id: string, props: AgentPoolProps, grant: CredentialGrant = {}): AgentPool {
  const pool = new AgentPool(scope, id, props);
  const keys = [...new Set(pool.harnesses.flatMap((h) => h.credentialEnv))];
  if (keys.length) CredentialSecret.fromSecretName(scope, `${id}-keys`, `${pool.name}-keys`, keys).grantTo(pool, grant);
  return pool;
}
