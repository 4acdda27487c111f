#!/usr/bin/env node
/**
 * A stand-in agent CLI that keeps its conversation in HOME, the way the real CLIs do:
 * `talk-agent.js --start ID PROMPT` begins ~/.talk/ID.log, `--resume ID PROMPT` appends to it
 * (and fails when it is missing). It prints the whole conversation. A prompt holding LEAK
 * makes it write an API-key-shaped string into its conversation file only (not to stdout),
 * one holding ECHO-KEY the value of $TALK_KEY (a credential it was given).
 */
const fs = require('fs');
const path = require('path');

const [flag, id, prompt] = process.argv.slice(2);
const dir = path.join(process.env.HOME, '.talk');
const file = path.join(dir, `${id}.log`);
if (flag === '--resume' && !fs.existsSync(file)) {
  process.stderr.write(`no conversation ${id} to resume\n`);
  process.exit(3);
}
fs.mkdirSync(dir, { recursive: true });
fs.appendFileSync(file, `user: ${prompt}\n${prompt.includes('LEAK') ? 'tool: export OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwxyz0123\n' : ''}${prompt.includes('ECHO-KEY') ? `tool: ${process.env.TALK_KEY}\n` : ''}`);
process.stdout.write(`${flag} ${id}\n${fs.readFileSync(file, 'utf8').replace(/sk-proj-\w+/g, '[key]')}`);
