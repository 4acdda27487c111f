/**
 * `npm run test:cluster`: starts the control plane once for the whole (in-band) run.
 * The suites find it through $PADDOCK_CLUSTER_INFO (a JSON file, see support/cluster.ts).
 */
import * as fs from 'fs';
import * as path from 'path';
import { startControlPlane } from './support/control-plane';

export default async function globalSetup(): Promise<void> {
  // A control plane that is already up (its cluster.json in $PADDOCK_CLUSTER_INFO) is reused as is.
  if (process.env.PADDOCK_CLUSTER_INFO && fs.existsSync(process.env.PADDOCK_CLUSTER_INFO)) return;
  const t0 = Date.now();
  const plane = await startControlPlane({ log: (line) => process.stderr.write(`[cluster] ${line}\n`) });
  const file = path.join(plane.info.dir, 'cluster.json');
  fs.writeFileSync(file, JSON.stringify(plane.info, null, 2));
  process.env.PADDOCK_CLUSTER_INFO = file;
  (globalThis as any).__paddockControlPlane = plane;
  const stopOnSignal = (sig: NodeJS.Signals) => {
    void plane.stop().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  process.stderr.write(`[cluster] up in ${((Date.now() - t0) / 1000).toFixed(1)} s; logs in ${plane.info.logs}\n`);
}
