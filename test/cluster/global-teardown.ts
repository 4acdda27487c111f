/** Stops every process the global setup started, and removes its directory unless asked to keep it. */
import * as fs from 'fs';
import type { ControlPlane } from './support/control-plane';

export default async function globalTeardown(): Promise<void> {
  const plane = (globalThis as any).__paddockControlPlane as ControlPlane | undefined;
  if (!plane) return;
  await plane.stop();
  if (process.env.PADDOCK_KEEP_CLUSTER_DIR) process.stderr.write(`[cluster] kept ${plane.info.dir}\n`);
  else fs.rmSync(plane.info.dir, { recursive: true, force: true });
}
