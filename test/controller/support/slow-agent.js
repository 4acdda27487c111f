#!/usr/bin/env node
/*
 * A stand-in agent for the controller tests. argv: LOGFILE SLEEP_MS PROMPT.
 * Appends "start <prompt> <pid>" to LOGFILE, sleeps, prints a ```result block
 * holding the prompt, appends "end <prompt> <pid>".
 */
'use strict';
const fs = require('fs');
const [log, sleepMs, prompt] = process.argv.slice(2);
fs.appendFileSync(log, `start ${prompt} ${process.pid}\n`);
setTimeout(() => {
  process.stdout.write('```result\n' + JSON.stringify({ prompt, pid: process.pid }) + '\n```\n');
  fs.appendFileSync(log, `end ${prompt} ${process.pid}\n`);
}, Number(sleepMs));
