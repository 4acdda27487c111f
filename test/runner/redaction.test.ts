/**
 * Redaction: unit tests of the stream redactor (secrets split across chunks, very long
 * lines, multi-byte characters), and end to end: credential values printed by the agent
 * never reach the runner's log or any artifact.
 */
import * as fs from 'fs';
import * as path from 'path';
import { LinePrefixer, REDACTED, Redactor, StreamRedactor } from '../../runner/redaction';
import { fakeHarness, makeRunDirs, makeTmpDir, pool, readJsonl, runTask, task } from '../support/runner-fixtures';

function streamAll(redactor: Redactor, chunks: Array<string | Buffer>): string {
  const s = new StreamRedactor(redactor);
  return chunks.map((c) => s.push(c)).join('') + s.end();
}

describe('StreamRedactor', () => {
  const secret = 'sk-live-5f2a9c71d3e8';
  const r = new Redactor();
  r.add(secret);
  const text = `line one\nthe key is ${secret}, again ${secret}\nlast ${secret}`;
  const expected = text.split(secret).join(REDACTED);

  test('a secret split at every possible chunk boundary is still caught', () => {
    for (let cut = 1; cut < text.length; cut++) {
      expect(streamAll(r, [text.slice(0, cut), text.slice(cut)])).toBe(expected);
    }
  });

  test('byte by byte, with multi-byte characters split across chunks', () => {
    const withUnicode = `✓ ${secret} 🚀\n${secret}✓`;
    const bytes = Buffer.from(withUnicode);
    const chunks = [...bytes].map((b) => Buffer.from([b]));
    expect(streamAll(r, chunks)).toBe(withUnicode.split(secret).join(REDACTED));
  });

  test('nothing is emitted for an incomplete line (a secret may still be arriving)', () => {
    const s = new StreamRedactor(r);
    expect(s.push(`partial ${secret.slice(0, 5)}`)).toBe('');
    expect(s.push(`${secret.slice(5)} done\n`)).toBe(`partial ${REDACTED} done\n`);
  });

  test('a very long line without newline is flushed in pieces, never cutting a secret', () => {
    const long = 'x'.repeat(64 * 1024 - 7) + secret + 'y'.repeat(70 * 1024) + secret;
    const chunks: string[] = [];
    for (let i = 0; i < long.length; i += 4093) chunks.push(long.slice(i, i + 4093));
    const s = new StreamRedactor(r);
    const pieces = chunks.map((c) => s.push(c));
    expect(pieces.some((p) => p.length > 0)).toBe(true); // flushed before the end
    expect(pieces.join('') + s.end()).toBe(long.split(secret).join(REDACTED));
  });

  test('multi-line secrets (a key file) are redacted line by line; short values are not secrets', () => {
    const red = new Redactor();
    red.add('-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END KEY-----\n');
    red.add('abc');
    expect(red.redact('x MIIEvQIBADANBgkqhkiG9w0BAQEFAASC y abc')).toBe(`x ${REDACTED} y abc`);
  });

  test('JSON credential files: every string value of 8+ characters', () => {
    const red = new Redactor();
    red.addFileContent(JSON.stringify({ type: 'oauth', tokens: { access: 'access-token-123', refresh: 'refresh-token-456' }, short: 'abc1234' }));
    expect(red.redact('access-token-123 refresh-token-456 oauth abc1234')).toBe(`${REDACTED} ${REDACTED} oauth abc1234`);
  });

  test('LinePrefixer prefixes whole lines only', () => {
    const out: string[] = [];
    const p = new LinePrefixer('> ', (l) => out.push(l));
    p.push('a\nb');
    p.push('c\n');
    p.push('tail');
    p.end();
    expect(out).toEqual(['> a\n', '> bc\n', '> tail\n']);
  });
});

describe('credentials printed by the agent', () => {
  test('are redacted in the log, in every artifact; credential files land in HOME mode 0400', async () => {
    const dirs = makeRunDirs();
    const secretsDir = makeTmpDir('paddock-secret-');
    const token = 'sk-ant-api03-TOPSECRET-0123456789';
    const authJson = JSON.stringify({ auth_mode: 'apikey', OPENAI_API_KEY: 'sk-proj-filesecret-777', nested: { refresh: 'rt-abcdefgh-xyz' } });
    fs.writeFileSync(path.join(secretsDir, 'auth.json'), authJson);
    const p = pool({
      credentials: {
        env: [{ name: 'ANTHROPIC_API_KEY', secret: 'anthropic', key: 'api-key' }],
        files: [{ path: '.codex/auth.json', source: path.join(secretsDir, 'auth.json') }],
      },
    });
    const r = await runTask(
      dirs,
      { task: task(), harness: fakeHarness('secret', ['ANTHROPIC_API_KEY', '.codex/auth.json']), pool: p },
      { env: { PATH: process.env.PATH, ANTHROPIC_API_KEY: token } },
    );
    expect(r.code).toBe(0);
    // The agent really got the secrets...
    expect(r.report().env.ANTHROPIC_API_KEY).toBe(token);
    const copied = path.join(dirs.home, '.codex/auth.json');
    expect(fs.readFileSync(copied, 'utf8')).toBe(authJson);
    expect(fs.statSync(copied).mode & 0o777).toBe(0o400);
    // ...and printed them, but nothing the runner wrote contains them.
    const artifacts = fs.readdirSync(dirs.artifacts).sort();
    expect(artifacts).toEqual(['agent.stderr.log', 'agent.stdout.log', 'results.jsonl', 'status.json']);
    const written = [r.stdout, r.stderr, ...artifacts.map((f) => fs.readFileSync(path.join(dirs.artifacts, f), 'utf8'))].join('\n');
    for (const value of [token, 'sk-proj-filesecret-777', 'rt-abcdefgh-xyz', authJson]) {
      expect(written).not.toContain(value);
    }
    expect(r.stdout).toContain(`[agent] token is ${REDACTED} (leaked)\n`);
    expect(r.stderr).toContain(`[agent] stderr has ${REDACTED} too\n`);
    expect(fs.readFileSync(path.join(dirs.artifacts, 'agent.stdout.log'), 'utf8')).toContain(`token is ${REDACTED} (leaked)`);
    expect(readJsonl(path.join(dirs.artifacts, 'results.jsonl'))).toEqual([{ token: REDACTED, note: `contains ${REDACTED}` }]);
  });
});
