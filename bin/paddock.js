#!/usr/bin/env node
'use strict';
// Thin launcher: all logic is in lib/cli/main.js (built by `npm run build`).
require('../lib/cli/main.js')
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
  })
  .catch((err) => {
    process.stderr.write(`paddock: internal error: ${err && err.stack ? err.stack : err}\n`);
    process.exitCode = 6;
  });
