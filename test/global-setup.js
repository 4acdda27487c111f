// Suites that spawn `paddock` or `cdk8s synth` run the built package (lib/);
// build it once per jest run so they never test stale output.
const { execFileSync } = require('child_process');
const path = require('path');

module.exports = async () => {
  const root = path.join(__dirname, '..');
  // The same steps as `npm run build`.
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
  execFileSync(process.execPath, ['lib/policy/build-validators.js'], { cwd: root, stdio: 'inherit' });
};
