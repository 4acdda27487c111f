/**
 * `paddock tasks ...` end to end against `paddock local --serve` (the built CLI: the
 * controller with both APIs on loopback, real worker processes, the runner), with a
 * stand-in agent (test/controller/support/slow-agent.js) as the pool's harness: the
 * client, its token file and its exit codes are what is under test here.
 */
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { main } from '../../cli/main';
import { memoryPlatform, slowHarness } from '../controller/support/platform';
import { makeTmpDir } from '../support/runner-fixtures';

jest.setTimeout(120_000);

const PADDOCK = path.resolve(__dirname, '..', '..', 'bin', 'paddock.js');

async function cli(env: NodeJS.ProcessEnv, ...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) }, env);
  return { code, stdout, stderr };
}

describe('paddock tasks against paddock local --serve (stand-in agent)', () => {
  let root: string;
  let local: ChildProcess;
  let out = '';
  let env: NodeJS.ProcessEnv;
  let tokenFile: string;

  beforeAll(async () => {
    root = makeTmpDir('paddock-tasks-');
    const agentLog = path.join(root, 'agent.log');
    fs.writeFileSync(agentLog, '');
    // A dist/ as npm run synth writes it: the pool's and the harness's ConfigMaps.
    const dist = path.join(root, 'dist');
    fs.mkdirSync(dist);
    const objects = memoryPlatform(slowHarness(agentLog, 300)).list('ConfigMap');
    fs.writeFileSync(path.join(dist, 'paddock.k8s.yaml'), objects.map((o) => toYaml({ ...o, metadata: { name: o.metadata.name, namespace: 'paddock', labels: o.metadata.labels } })).join('---\n'));
    local = spawn(process.execPath, [PADDOCK, 'local', '--dir', dist, '--out', path.join(root, 'out'), '--serve'], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH } });
    local.stdout!.on('data', (d) => (out += d));
    local.stderr!.on('data', (d) => (out += d));
    const end = Date.now() + 30_000;
    let m: RegExpExecArray | null = null;
    while (!(m = /export PADDOCK_SERVER=(\S+) PADDOCK_TOKEN_FILE=(\S+)/.exec(out))) {
      if (Date.now() > end || local.exitCode !== null) throw new Error(`paddock local did not start:\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    tokenFile = m[2];
    env = { PADDOCK_SERVER: m[1], PADDOCK_TOKEN_FILE: tokenFile };
  });
  afterAll(async () => {
    if (local.exitCode === null) {
      local.kill('SIGTERM');
      await new Promise((r) => local.once('exit', r));
    }
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('the token is a file only you can read', () => {
    expect(fs.statSync(tokenFile).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(tokenFile, 'utf8').trim()).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  test('submit with flags, watch until it succeeds, results, get -o yaml, list', async () => {
    const submitted = await cli(env, 'tasks', 'submit', '--name', 'hello', '--pool', 'warm', '--harness', 'slow', '--prompt', 'say hello', '-o', 'json');
    expect(submitted).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(submitted.stdout)).toMatchObject({ name: 'hello', run: expect.stringMatching(/^hello-[0-9a-f]{10}$/) });
    const watched = await cli(env, 'tasks', 'watch', 'hello', '--interval', '100', '--timeout', '60');
    expect({ code: watched.code, stderr: watched.stderr }).toEqual({ code: 0, stderr: '' });
    expect(watched.stdout).toMatch(/\thello\tSucceeded\twarm\thello-[0-9a-f]{10} attempt 1 succeeded/);
    const results = await cli(env, 'tasks', 'results', 'hello', '-o', 'json');
    expect(JSON.parse(results.stdout)).toMatchObject({ phase: 'Succeeded', results: [{ prompt: 'say hello' }], status: { outcome: 'succeeded' } });
    const text = await cli(env, 'tasks', 'results', 'hello');
    expect(JSON.parse(text.stdout.trim())).toMatchObject({ prompt: 'say hello' });
    expect(text.stderr).toMatch(/: Succeeded \(succeeded\), 1 result\(s\)/);
    const got = await cli(env, 'tasks', 'get', 'hello', '-o', 'yaml');
    expect(parseYaml(got.stdout)).toMatchObject({ name: 'hello', phase: 'Succeeded', pool: 'warm', run: { attempt: 1, outcome: 'succeeded' } });
    const listed = await cli(env, 'tasks', 'list');
    expect(listed.stdout).toMatch(/^NAME\tPHASE\tPOOL\tRUN\nhello\tSucceeded\twarm\t/);
  });

  test('submit -f task.yaml --watch; cancel; exit codes 1 (task failed), 3 (no such task)', async () => {
    const file = path.join(root, 'task.yaml');
    fs.writeFileSync(file, toYaml({ apiVersion: 'paddock.dev/v1alpha1', kind: 'Task', name: 'from-file', pool: 'warm', harness: 'slow', prompt: 'from a file' }));
    const watched = await cli(env, 'tasks', 'submit', '-f', file, '--watch');
    expect(watched.code).toBe(0);
    expect(watched.stdout).toMatch(/^task from-file created: run from-file-/);
    // A source that cannot be fetched: the run fails, watch exits 1.
    const failing = await cli(env, 'tasks', 'submit', '--name', 'bad-source', '--pool', 'warm', '--harness', 'slow', '--prompt', 'x', '--source', 'https://127.0.0.1:9/nothing.git', '-w');
    expect(failing.code).toBe(1);
    expect(failing.stdout).toMatch(/bad-source\tFailed\twarm\t.*source_failed/);
    const cancelled = await cli(env, 'tasks', 'cancel', 'from-file');
    expect(cancelled.code).toBe(0);
    expect(cancelled.stdout).toMatch(/^task from-file cancelled \(run from-file-[0-9a-f]{10} was Succeeded\)/);
    const gone = await cli(env, 'tasks', 'get', 'from-file');
    expect(gone.code).toBe(3);
    expect(gone.stderr).toMatch(/^paddock tasks get: task "from-file": HTTP 404: task "from-file" not found/);
  });

  test('exit codes: 5 a wrong token, 7 no controller there, 2 bad arguments (each naming what to write)', async () => {
    const wrong = await cli({ PADDOCK_SERVER: env.PADDOCK_SERVER, PADDOCK_TOKEN: 'not-the-token' }, 'tasks', 'list');
    expect(wrong.code).toBe(5);
    expect(wrong.stderr).toMatch(/HTTP 401: the bearer token is not valid/);
    expect((await cli({ PADDOCK_TOKEN: 'x' }, 'tasks', 'list', '--server', 'http://127.0.0.1:9')).code).toBe(7);
    const noToken = await cli({}, 'tasks', 'list', '--server', env.PADDOCK_SERVER!);
    expect(noToken).toMatchObject({ code: 2, stderr: expect.stringMatching(/give a token for the task API: --token TOKEN or --token-file FILE/) });
    expect((await cli(env, 'tasks', 'list', '-o', 'xml')).stderr).toMatch(/-o xml is not an output format; write -o json or -o yaml/);
    expect((await cli(env, 'tasks', 'submit', '--name', 'x', '--pool', 'warm')).stderr).toMatch(/give -f task.yaml, or --name, --pool and --prompt \(missing: --prompt\)/);
    expect((await cli(env, 'tasks', 'submit', '-f', path.join(root, 'task.yaml'), '--pool', 'warm')).stderr).toMatch(/holds the whole task; leave out --pool/);
    const bad = path.join(root, 'bad.yaml');
    fs.writeFileSync(bad, 'apiVersion: paddock.dev/v1alpha1\nkind: Task\nname: Bad_Name\npool: warm\nharness: slow\n');
    const invalid = await cli(env, 'tasks', 'submit', '-f', bad);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toMatch(/the task does not validate \(task.schema.json\):[\s\S]*prompt: is required/);
    expect((await cli(env, 'tasks', 'submit', '--name', 'nowhere', '--pool', 'nope', '--harness', 'slow', '--prompt', 'x')).code).toBe(2);
    expect((await cli(env, 'tasks', 'get')).stderr).toMatch(/give the task's name, e.g. paddock tasks get fix-readme/);
    expect((await cli(env, 'tasks', 'list', '--token-file', path.join(root, 'missing'))).stderr).toMatch(/--token-file .*missing cannot be read \(ENOENT\)/);
  });

  test('sessions in paddock local: submit --session --new-session, then --session; sessions list, get, delete', async () => {
    const first = await cli(env, 'tasks', 'submit', '--name', 's-one', '--pool', 'warm', '--harness', 'slow', '--prompt', 'first turn', '--session', 'notes', '--new-session', '--priority', '900', '-w');
    expect({ code: first.code, stderr: first.stderr }).toEqual({ code: 0, stderr: '' });
    const second = await cli(env, 'tasks', 'submit', '--name', 's-two', '--pool', 'warm', '--harness', 'slow', '--prompt', 'second turn', '--session', 'notes', '-w');
    expect({ code: second.code, stderr: second.stderr }).toEqual({ code: 0, stderr: '' });
    // The second agent got the first turn as a transcript before its own prompt.
    const results = JSON.parse((await cli(env, 'tasks', 'results', 's-two', '-o', 'json')).stdout);
    expect(results.results[0].prompt).toMatch(/^This task continues session "notes"[\s\S]*User:\nfirst turn[\s\S]*--- now\nsecond turn$/);
    expect(JSON.parse((await cli(env, 'tasks', 'get', 's-one', '-o', 'json')).stdout)).toMatchObject({ priority: 900, session: { name: 'notes' } });

    expect((await cli(env, 'sessions', 'list')).stdout).toMatch(/^NAME\tPOOL\tTURNS\tBYTES\tTASKS\nnotes\twarm\t2\t\d+\ts-one, s-two\n$/);
    expect(JSON.parse((await cli(env, 'sessions', 'get', 'notes', '-o', 'json')).stdout)).toMatchObject({ name: 'notes', pool: 'warm', resume: 'transcript', turns: [{ task: 's-one' }, { task: 's-two' }] });
    expect((await cli(env, 'sessions', 'get', 'notes')).stdout).toMatch(/^session notes: pool warm, harness slow, resumed by transcript, \d+ bytes\nturn 1: task s-one\nturn 2: task s-two\n/);
    expect(await cli(env, 'sessions', 'delete', 'notes')).toEqual({ code: 0, stdout: 'deleted session notes\n', stderr: '' });
    const gone = await cli(env, 'sessions', 'get', 'notes');
    expect(gone.code).toBe(3);
    expect(gone.stderr).toMatch(/^paddock sessions get: session "notes": HTTP 404: session "notes" not found/);
    expect((await cli({ PADDOCK_SERVER: env.PADDOCK_SERVER, PADDOCK_TOKEN: 'not-the-token' }, 'sessions', 'list')).code).toBe(5);

    const flags = ['tasks', 'submit', '--name', 'x', '--pool', 'warm', '--prompt', 'x'];
    expect((await cli(env, ...flags, '--new-session')).stderr).toMatch(/--new-session goes with --session NAME, e.g. --session fix-flaky-tests --new-session/);
    expect((await cli(env, ...flags, '--priority', '1001')).stderr).toMatch(/--priority "1001" must be a whole number from 0 to 1000 \(default 500; higher runs first\), e.g. --priority 800/);
  });

  test('SIGTERM: paddock local exits 0 and removes its token file', async () => {
    local.kill('SIGTERM');
    const code = await new Promise((r) => local.once('exit', r));
    expect(code).toBe(0);
    expect(fs.existsSync(tokenFile)).toBe(false);

  });
});
