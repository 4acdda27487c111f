// `npm test` runs the real agent CLIs. Install them (npm ci --prefix test/agents)
// when they are missing or test/agents/package-lock.json changed since the last install.
const { execFileSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const dir = path.join(__dirname, 'agents');
const stamp = path.join(dir, 'node_modules', '.paddock-lock-sha256');
const lockHash = crypto.createHash('sha256').update(fs.readFileSync(path.join(dir, 'package-lock.json'))).digest('hex');

if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === lockHash) {
  process.exit(0);
}
console.log('Installing the agent CLIs for the e2e tests: npm ci --prefix test/agents');
execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--prefix', dir], { stdio: 'inherit' });
fs.writeFileSync(stamp, lockHash);
