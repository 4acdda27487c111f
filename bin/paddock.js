#!/usr/bin/env node
'use strict';
// Thin launcher: all logic is in lib/runner/cli.js (built by `npm run build`).
require('../lib/runner/cli.js')
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
  })
  .catch((err) => {
    process.stderr.write(`paddock: internal error: ${err && err.stack ? err.stack : err}\n`);
    process.exitCode = 6;
  });
