// Suites that spawn `paddock` or `cdk8s synth` run the built package (lib/);
// build it once per jest run so they never test stale output.
const { execFileSync } = require('child_process');
const path = require('path');

module.exports = async () => {
  const root = path.join(__dirname, '..');
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
};
