/**
 * `cdk8s synth` (or `npm run synth`) writes the example platform to
 * dist/paddock.k8s.yaml, ready for a GitOps repository.
 */
import { App, Chart } from 'cdk8s';
import { examplePlatform } from '../example-platform';
import { buildPlatform } from '../platform-definition';

/** `outdir` defaults to what `cdk8s synth --output` asks for (CDK8S_OUTDIR), else dist/. */
export function buildApp(outdir?: string): App {
  const app = new App(outdir ? { outdir } : {});
  const chart = new Chart(app, 'paddock', { disableResourceNameHashes: true });
  buildPlatform(chart, 'platform', examplePlatform);
  return app;
}

if (require.main === module) {
  buildApp().synth();
}
