import { Chart } from 'cdk8s';
import { IConstruct } from 'constructs';
import type { KubeObject } from '../policy/rules';

export class PaddockSynthError extends Error {
  constructor(public readonly problems: string[]) {
    super(`Paddock: synthesis failed with ${problems.length} problem(s):\n  - ${problems.join('\n  - ')}`);
    this.name = 'PaddockSynthError';
  }
}

/**
 * Run every validation under `scope` (as `app.synth()` does) and return the
 * chart's objects. Used by tests and the Pulumi component, which need the
 * objects without writing files.
 */
export function synthesize(chart: Chart): KubeObject[] {
  const problems = chart.node.findAll().flatMap((c: IConstruct) => c.node.validate());
  if (problems.length > 0) {
    throw new PaddockSynthError(problems);
  }
  return chart.toJson() as KubeObject[];
}

