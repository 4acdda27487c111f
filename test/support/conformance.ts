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
