// Preloaded with `node --require` (NODE_OPTIONS, so child processes get it too):
// makes the synthesis stack unloadable. A runtime command that needs cdk8s,
// constructs, cdk8s-plus, @pulumi/* or Paddock's own constructs/ or stacks/
// then fails with MODULE_NOT_FOUND, as it would in an agent image without them.
'use strict';
const Module = require('module');
const path = require('path');

const BLOCKED_PACKAGES = /^(cdk8s|cdk8s-plus-\d+|constructs|@pulumi\/.+)(\/.*)?$/;
const BLOCKED_FOLDERS = ['constructs', 'stacks'].map((d) => `${path.sep}lib${path.sep}${d}${path.sep}`);

const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, parent, ...rest) {
  const from = parent && parent.filename ? parent.filename : '<main>';
  if (BLOCKED_PACKAGES.test(request)) {
    throw Object.assign(new Error(`blocked by block-synthesis.js: ${request} (required from ${from})`), { code: 'MODULE_NOT_FOUND' });
  }
  const resolved = resolve.call(this, request, parent, ...rest);
  if (BLOCKED_FOLDERS.some((f) => resolved.includes(f))) {
    throw Object.assign(new Error(`blocked by block-synthesis.js: ${resolved} (required from ${from})`), { code: 'MODULE_NOT_FOUND' });
  }
  return resolved;
};
