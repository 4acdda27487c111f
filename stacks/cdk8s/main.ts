/**
 * `cdk8s synth` (or `npm run synth`) writes the example platform to
 * dist/paddock.k8s.yaml, ready for a GitOps repository.
 */
import { App, Chart } from 'cdk8s';
import { examplePlatform } from '../example-platform';
import { buildPlatform } from '../platform-definition';

export function buildApp(outdir = 'dist'): App {
  const app = new App({ outdir });
  const chart = new Chart(app, 'paddock', { disableResourceNameHashes: true });
  buildPlatform(chart, 'platform', examplePlatform);
  return app;
}

if (require.main === module) {
  buildApp().synth();
}
