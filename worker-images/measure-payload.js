/**
 * Runs INSIDE a Paddock image (`node - < measure-payload.js`, see measure.sh) and prints,
 * as JSON, the bytes of what the image cannot do without (its "payload"):
 *   cli    the agent CLI package as npm installed it (/opt/paddock-agent; 0 in the runner)
 *   node   the Node runtime (/usr/local/bin/node)
 *   git    git and the packages apt installed for it (auto-installed dependencies reachable
 *          from git's Depends/Pre-Depends), as files on disk
 * and, for the record, paddock (the runner package, /opt/paddock).
 * Sizes are file contents in bytes, each inode once (hard links count once, as in a layer).
 */
'use strict';
const fs = require('fs');
const path = require('path');

const seen = new Set();
function fileBytes(p) {
  let st;
  try {
    st = fs.lstatSync(p);
  } catch {
    return 0; // excluded by dpkg path-exclude (docs, man pages) or removed
  }
  if (!st.isFile()) return 0;
  const key = `${st.dev}:${st.ino}`;
  if (seen.has(key)) return 0;
  seen.add(key);
  return st.size;
}
function treeBytes(dir) {
  let total = 0;
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    total += e.isDirectory() ? treeBytes(p) : fileBytes(p);
  }
  return total;
}

// dpkg's view: installed packages, their dependencies, and which ones apt installed as dependencies.
const status = fs.readFileSync('/var/lib/dpkg/status', 'utf8').split(/\n\n+/);
const installed = new Map();
for (const stanza of status) {
  const field = (name) => {
    const m = new RegExp(`^${name}: (.*(?:\\n .*)*)`, 'm').exec(stanza);
    return m ? m[1].replace(/\n /g, ' ') : '';
  };
  const name = field('Package');
  if (!name || !/install ok installed/.test(field('Status'))) continue;
  installed.set(name, { arch: field('Architecture'), deps: `${field('Pre-Depends')},${field('Depends')}` });
}
const auto = new Set();
try {
  for (const stanza of fs.readFileSync('/var/lib/apt/extended_states', 'utf8').split(/\n\n+/)) {
    const name = /^Package: (.*)$/m.exec(stanza)?.[1];
    if (name && /^Auto-Installed: 1$/m.test(stanza)) auto.add(name);
  }
} catch {
  // No apt state: only git itself counts.
}
function depsOf(pkg) {
  const out = [];
  for (const clause of installed.get(pkg).deps.split(',')) {
    // "a (>= 1) | b": the first alternative that is installed.
    const alt = clause
      .split('|')
      .map((s) => s.trim().split(/[\s(:]/)[0])
      .find((n) => n && installed.has(n));
    if (alt) out.push(alt);
  }
  return out;
}
const gitPackages = [];
if (installed.has('git')) {
  const queue = ['git'];
  const visited = new Set(queue);
  while (queue.length) {
    const pkg = queue.shift();
    gitPackages.push(pkg);
    for (const dep of depsOf(pkg)) {
      if (!visited.has(dep) && auto.has(dep)) {
        visited.add(dep);
        queue.push(dep);
      }
    }
  }
}
function packageBytes(pkg) {
  const { arch } = installed.get(pkg);
  const lists = [`/var/lib/dpkg/info/${pkg}.list`, `/var/lib/dpkg/info/${pkg}:${arch}.list`];
  const list = lists.find((f) => fs.existsSync(f));
  if (!list) return 0;
  return fs
    .readFileSync(list, 'utf8')
    .split('\n')
    .filter(Boolean)
    .reduce((sum, f) => sum + fileBytes(f), 0);
}

const result = {
  cli: treeBytes('/opt/paddock-agent'),
  node: fileBytes('/usr/local/bin/node'),
  git: gitPackages.reduce((sum, p) => sum + packageBytes(p), 0),
  gitPackages: gitPackages.sort(),
  paddock: treeBytes('/opt/paddock'),
};
process.stdout.write(JSON.stringify(result) + '\n');
