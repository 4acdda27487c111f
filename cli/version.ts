/** The package's version, read from its package.json (from source, cli/; built, lib/cli/). */
import * as fs from 'fs';
import * as path from 'path';

export function packageVersion(): string {
  for (const dir of [path.join(__dirname, '..'), path.join(__dirname, '..', '..')]) {
    const file = path.join(dir, 'package.json');
    if (!fs.existsSync(file)) continue;
    const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === 'paddock' && pkg.version) return pkg.version;
  }
  throw new Error('paddock: cannot find the package.json of paddock next to its code');
}
