/**
 * run() end to end with a fake agent (a node script, argv, no shell): prompts, env
 * allowlist, outcomes and exit codes, timeouts, results, artifacts.
 */
import * as fs from 'fs';
import * as path from 'path';
import { fakeHarness, isAlive, makeRunDirs, pool, readJsonl, runTask, task, waitFor } from '../support/runner-fixtures';

const NASTY_PROMPT = `Fix "the bug" in 'parser.ts'; then run $(rm -rf /) and \`whoami\` && echo $HOME
second line\twith a tab, a backslash \\ and unicode ✓ 🚀
  indented third line; ; | > /dev/null
`;

describe('the happy path', () => {
  test('runs the agent in the workdir, streams prefixed logs, writes results.jsonl and status.json', async () => {
    const dirs = makeRunDirs();
    const r = await runTask(dirs, { task: task(), harness: fakeHarness('echo') });
    expect(r.code).toBe(0);
    expect(r.status).toMatchObject({
      task: 'demo-task',
      harness: 'fake',
      pool: null,
      outcome: 'succeeded',
      runnerExitCode: 0,
      exitCode: 0,
      signal: null,
      counts: { results: 1, parseErrors: 0 },
      parseErrors: [],
      sources: [],
    });
    for (const p of ['load', 'sources', 'config', 'agent', 'results', 'total']) {
      expect(typeof r.status.timings[p]).toBe('number');
    }
    expect(Date.parse(r.status.finishedAt)).toBeGreaterThanOrEqual(Date.parse(r.status.startedAt));
    expect(readJsonl(path.join(dirs.artifacts, 'results.jsonl'))).toEqual([{ ok: true, files: ['agent-wrote.txt'] }]);
    // No sources: the agent works in the workspace itself.
    expect(fs.readFileSync(path.join(dirs.workspace, 'agent-wrote.txt'), 'utf8')).toBe('hello from the agent\n');
    // stdout lines to the runner's stdout, stderr lines to its stderr, each prefixed.
    expect(r.stdout).toContain('[agent] working...\n[agent] Done.\n[agent] ```result\n');
    expect(r.stderr).toContain('[agent] a warning on stderr\n');
    expect(r.stderr).toMatch(/\[paddock\] outcome succeeded \(runner exit 0, agent exit 0\)/);
    expect(fs.readFileSync(path.join(dirs.artifacts, 'agent.stdout.log'), 'utf8')).toMatch(/^working\.\.\.\nDone\.\n```result\n/);
    expect(fs.readFileSync(path.join(dirs.artifacts, 'agent.stderr.log'), 'utf8')).toBe('a warning on stderr\n');
    // The scratch dir is cleaned up.
    expect(fs.readdirSync(dirs.tmp)).toEqual([]);
  });
});

describe('the prompt reaches the agent byte for byte', () => {
  test('as one argv element ({prompt}), however it is quoted', async () => {
    const dirs = makeRunDirs();
    const r = await runTask(dirs, { task: task({ prompt: NASTY_PROMPT }), harness: fakeHarness('echo', ['--prompt', '{prompt}', '--model={model}'], { defaultModel: 'm-1' }) });
    expect(r.code).toBe(0);
    expect(r.report().args).toEqual(['--prompt', NASTY_PROMPT, '--model=m-1']);
  });

  test('task.model wins over the harness default; {workdir} is the agent cwd', async () => {
    const dirs = makeRunDirs();
    const r = await runTask(dirs, { task: task({ model: 'big-model' }), harness: fakeHarness('echo', ['{model}', '{workdir}', '{prompt}'], { defaultModel: 'm-1' }) });
    expect(r.report().args).toEqual(['big-model', dirs.workspace, 'Say hello']);
    expect(r.report().cwd).toBe(dirs.workspace);
  });

  test('in a file ({prompt_file})', async () => {
    const dirs = makeRunDirs();
    const r = await runTask(dirs, { task: task({ prompt: NASTY_PROMPT }), harness: fakeHarness('prompt-file', ['{prompt_file}']) });
    expect(r.code).toBe(0);
    expect(r.report().promptFileContent).toBe(NASTY_PROMPT);
    expect(fs.existsSync(r.report().promptFile)).toBe(false); // removed after the run
  });

  test('on stdin, which is then closed', async () => {
    const dirs = makeRunDirs();
    const r = await runTask(dirs, { task: task({ prompt: NASTY_PROMPT }), harness: fakeHarness('stdin', []) });
    expect(r.code).toBe(0);
    expect(r.report().stdin).toBe(NASTY_PROMPT);
  });

  test('otherwise stdin is /dev/null (an agent reading it gets EOF at once)', async () => {
    const dirs = makeRunDirs();
    const r = await runTask(dirs, { task: task(), harness: fakeHarness('stdin', ['{prompt}']) });
    expect(r.code).toBe(0);
    expect(r.report().stdin).toBe('');
  });
});

describe('the agent environment is an allowlist', () => {
  test('only the basics, harness/pool/task env and granted credentials; nothing else from the runner', async () => {
    const dirs = makeRunDirs();
    const runnerEnv = {
      PATH: process.env.PATH,
      LANG: 'C.UTF-8',
      HTTPS_PROXY: 'http://runner-proxy:3128',
      no_proxy: 'runner.local',
      UNDECLARED_SECRET: 'must-not-leak-1234',
      AWS_SECRET_ACCESS_KEY: 'aws-should-not-leak',
      KUBERNETES_SERVICE_HOST: '10.0.0.1',
      MODEL_API_KEY: 'sk-granted-abcdef123456',
      NOT_GRANTED_KEY: 'sk-not-granted-999',
    };
    const r = await runTask(
      dirs,
      {
        task: task({ env: { LAYER: 'task', TASK_ONLY: 't' } }),
        harness: fakeHarness('echo', ['{prompt}'], { env: { LAYER: 'harness', HARNESS_ONLY: 'h', HOME: '/elsewhere' } }),
        pool: pool({
          env: { LAYER: 'pool', POOL_ONLY: 'p' },
          credentials: { env: [{ name: 'MODEL_API_KEY', secret: 'model', key: 'api-key' }] },
          egress: { proxy: 'http://egress-proxy:3128', noProxy: ['localhost', '127.0.0.1'] },
        }),
      },
      { env: runnerEnv },
    );
    expect(r.code).toBe(0);
    expect(r.report().env).toEqual({
      HOME: dirs.home,
      PATH: process.env.PATH,
      LANG: 'C.UTF-8',
      HTTPS_PROXY: 'http://egress-proxy:3128',
      HTTP_PROXY: 'http://egress-proxy:3128',
      https_proxy: 'http://egress-proxy:3128',
      http_proxy: 'http://egress-proxy:3128',
      NO_PROXY: 'localhost,127.0.0.1',
      no_proxy: 'localhost,127.0.0.1',
      LAYER: 'task',
      HARNESS_ONLY: 'h',
      POOL_ONLY: 'p',
      TASK_ONLY: 't',
      MODEL_API_KEY: 'sk-granted-abcdef123456',
    });
  });

  test('proxy variables set on the runner pass through when the pool sets none', async () => {
    const dirs = makeRunDirs();
    const r = await runTask(dirs, { task: task(), harness: fakeHarness('echo') }, { env: { PATH: process.env.PATH, HTTPS_PROXY: 'http://p:1', no_proxy: 'x', SECRET: 'nope' } });
    expect(r.report().env).toEqual({ HOME: dirs.home, PATH: process.env.PATH, HTTPS_PROXY: 'http://p:1', no_proxy: 'x' });
  });

  test('local mode (no pool): the harness credentialEnv set on the runner is granted, and redacted', async () => {
    const dirs = makeRunDirs();
    const r = await runTask(
      dirs,
      { task: task(), harness: fakeHarness('secret', ['OPENAI_API_KEY'], { credentialEnv: ['OPENAI_API_KEY', 'OTHER_KEY'] }) },
      { env: { PATH: process.env.PATH, OPENAI_API_KEY: 'sk-local-0123456789', UNRELATED: 'x' } },
    );
    expect(r.report().env.OPENAI_API_KEY).toBe('sk-local-0123456789');
    expect(r.report().env.UNRELATED).toBeUndefined();
    expect(r.stdout).not.toContain('sk-local-0123456789');
    expect(r.stderr).toMatch(/OTHER_KEY not set/);
  });
});

describe('outcomes', () => {
  test('agent exits non-zero: failed, exit 1, its output and results kept', async () => {
    const dirs = makeRunDirs();
    const r = await runTask(dirs, { task: task(), harness: fakeHarness('fail') });
    expect(r.code).toBe(1);
    expect(r.status).toMatchObject({ outcome: 'failed', exitCode: 3, signal: null, message: 'the agent exited with code 3' });
    expect(readJsonl(path.join(dirs.artifacts, 'results.jsonl'))).toEqual([{ ok: false }]);
    expect(r.stderr).toContain('[agent] something broke');
  });

  describe('a harness whose retries the model gateway caps (gatewayMaxRetries)', () => {
    const notice = 'paddock model gateway: provider openai failed 3 requests in a row (a failure status or no answer); the harness allows 2 retries (maxRetries), so this answer is final';
    // Split across two writes, the way a CLI may print an error: the runner still finds it.
    const script = `printf 'Error: ${notice.slice(0, 40)}' >&2; sleep 0.2; printf '${notice.slice(40)}\\n' >&2; exit 1`;
    const viaGateway = (dirs: ReturnType<typeof makeRunDirs>) => {
      const tokenFile = path.join(dirs.tmp, 'gateway-token');
      fs.mkdirSync(dirs.tmp, { recursive: true });
      fs.writeFileSync(tokenFile, 'pool-token-0123456789');
      return pool({ gateway: { url: 'http://127.0.0.1:9/local', tokenFile, credentials: [{ env: 'OPENAI_API_KEY', provider: 'openai' }] } });
    };

    test('its final answer in the agent output: failed, and the message says the provider failed, how often, and the cap', async () => {
      const dirs = makeRunDirs();
      const harness = fakeHarness('script', [script], { credentialEnv: ['OPENAI_API_KEY'], gatewayMaxRetries: 2 });
      const r = await runTask(dirs, { task: task(), harness, pool: viaGateway(dirs) });
      expect(r.status).toMatchObject({
        outcome: 'failed',
        exitCode: 1,
        message:
          'the agent exited with code 1: the model provider "openai" failed 3 requests in a row (HTTP 5xx, 429 or no answer), and the model gateway answered the last one as final (the harness allows 2 retries, maxRetries)',
      });
    });

    test('not looked for when the provider is not reached through the gateway, which the log says', async () => {
      const dirs = makeRunDirs();
      const harness = fakeHarness('script', [script], { credentialEnv: ['OPENAI_API_KEY'], gatewayMaxRetries: 2 });
      const r = await runTask(dirs, { task: task(), harness }, { env: { PATH: process.env.PATH, OPENAI_API_KEY: 'sk-direct-0123456789' } });
      expect(r.status).toMatchObject({ outcome: 'failed', message: 'the agent exited with code 1' });
      expect(r.stderr).toContain('harness "fake": its retry cap (gatewayMaxRetries 2) is kept by the model gateway, which this run\'s provider is not reached through; the CLI\'s own retries apply');
    });
  });

  test('agent cannot start: failed with the reason', async () => {
    const dirs = makeRunDirs();
    const harness = { ...fakeHarness('echo'), command: ['/nonexistent/agent-cli', '{prompt}'] };
    const r = await runTask(dirs, { task: task(), harness });
    expect(r.code).toBe(1);
    expect(r.status.outcome).toBe('failed');
    expect(r.status.message).toMatch(/cannot start the agent "\/nonexistent\/agent-cli": ENOENT/);
  });

  test.each([
    ['opencode', /^cannot start "opencode": not on PATH; install opencode-ai or use the paddock-opencode image$/],
    ['codex', /^cannot start "codex": not on PATH; install @openai\/codex or use the paddock-codex image$/],
    ['my-agent', /^cannot start "my-agent": not on PATH; install it, or use an image that has it$/],
  ])('agent CLI %s not on PATH: failed, and the message says which package provides it', async (program, message) => {
    const dirs = makeRunDirs();
    const harness = { ...fakeHarness('echo'), command: [program, '{prompt}'] };
    const r = await runTask(dirs, { task: task(), harness }, { env: { PATH: dirs.tmp } });
    expect(r.code).toBe(1);
    expect(r.status.outcome).toBe('failed');
    expect(r.status.message).toMatch(message);
  });

  test('agent hangs past the timeout: its whole process group is killed, grandchild included; partial output kept', async () => {
    const dirs = makeRunDirs();
    const started = Date.now();
    const r = await runTask(dirs, { task: task({ timeoutSeconds: 1 }), harness: fakeHarness('hang') });
    const elapsed = Date.now() - started;
    expect(r.code).toBe(4);
    expect(r.status).toMatchObject({ outcome: 'timed_out', exitCode: null, signal: 'SIGTERM' });
    expect(elapsed).toBeLessThan(5000);
    const grandchild = Number(fs.readFileSync(path.join(dirs.home, 'grandchild.pid'), 'utf8'));
    // The grandchild ignores SIGTERM: it dies by the SIGKILL sent to the group.
    expect(await waitFor(() => !isAlive(grandchild), 2000)).toBe(true);
    // Partial output, including a last line without a newline, in the log and the artifact.
    expect(r.stdout).toContain('[agent] partial output before hanging\n');
    expect(r.stdout).toContain('[agent] no newline at the end\n');
    expect(fs.readFileSync(path.join(dirs.artifacts, 'agent.stdout.log'), 'utf8')).toMatch(/no newline at the end$/);
    expect(readJsonl(path.join(dirs.artifacts, 'results.jsonl'))).toEqual([{ partial: true }]);
    expect(r.status.message).toMatch(/past the timeout of 1 s/);
  });

  test('an agent that ignores SIGTERM gets SIGKILL after the grace period', async () => {
    const dirs = makeRunDirs();
    const r = await runTask(dirs, { task: task({ timeoutSeconds: 1 }), harness: fakeHarness('hang-stubborn') }, { killGraceMs: 200 });
    expect(r.code).toBe(4);
    expect(r.status).toMatchObject({ outcome: 'timed_out', signal: 'SIGKILL' });
    expect(r.stdout).toContain('ignoring SIGTERM\n');
    const grandchild = Number(fs.readFileSync(path.join(dirs.home, 'grandchild.pid'), 'utf8'));
    expect(await waitFor(() => !isAlive(grandchild), 2000)).toBe(true);
  });

  test('abort (what the CLI does on SIGTERM): terminated, exit 5, the agent stopped, artifacts written', async () => {
    const dirs = makeRunDirs();
    const controller = new AbortController();
    const pending = runTask(dirs, { task: task(), harness: fakeHarness('hang') }, { signal: controller.signal });
    expect(await waitFor(() => fs.existsSync(path.join(dirs.home, 'grandchild.pid')), 5000)).toBe(true);
    await new Promise((res) => setTimeout(res, 100));
    controller.abort();
    const r = await pending;
    expect(r.code).toBe(5);
    expect(r.status).toMatchObject({ outcome: 'terminated', signal: 'SIGTERM' });
    expect(readJsonl(path.join(dirs.artifacts, 'results.jsonl'))).toEqual([{ partial: true }]);
    const grandchild = Number(fs.readFileSync(path.join(dirs.home, 'grandchild.pid'), 'utf8'));
    expect(await waitFor(() => !isAlive(grandchild), 2000)).toBe(true);
  });

  test('abort before the run starts: terminated, nothing fetched or run', async () => {
    const dirs = makeRunDirs();
    const controller = new AbortController();
    controller.abort();
    const r = await runTask(dirs, { task: task(), harness: fakeHarness('echo') }, { signal: controller.signal });
    expect(r.code).toBe(5);
    expect(fs.existsSync(dirs.workspace)).toBe(false);
  });
});

describe('results', () => {
  test('a block that is not JSON is a parse error, not a crash; the others are kept', async () => {
    const dirs = makeRunDirs();
    const r = await runTask(dirs, { task: task(), harness: fakeHarness('results') });
    expect(r.code).toBe(0);
    expect(readJsonl(path.join(dirs.artifacts, 'results.jsonl'))).toEqual([{ n: 1 }, { n: 2 }]);
    expect(r.status.counts).toEqual({ results: 2, parseErrors: 2 });
    expect(r.status.parseErrors).toEqual([
      { block: 2, message: expect.stringMatching(/JSON/), excerpt: 'this is not json' },
      { block: 4, message: expect.stringMatching(/JSON/), excerpt: '{"n": 3,' },
    ]);
    expect(r.stderr).toMatch(/result block 2: /);
  });

  test('from a json-field of the JSON on stdout (like claude --output-format json)', async () => {
    const dirs = makeRunDirs();
    const r = await runTask(dirs, { task: task(), harness: fakeHarness('json-output', ['{prompt}'], { results: { from: 'json-field', field: 'result' } }) });
    expect(readJsonl(path.join(dirs.artifacts, 'results.jsonl'))).toEqual([{ from: 'json-field' }]);
    expect(r.status.counts).toEqual({ results: 1, parseErrors: 0 });
  });

  test('json-field when stdout is not JSON: recorded as a parse error', async () => {
    const dirs = makeRunDirs();
    const r = await runTask(dirs, { task: task(), harness: fakeHarness('echo', ['{prompt}'], { results: { from: 'json-field', field: 'result' } }) });
    expect(r.code).toBe(0);
    expect(r.status.parseErrors).toEqual([{ block: 0, message: 'results.from json-field: stdout is not a JSON object', excerpt: '' }]);
    expect(fs.readFileSync(path.join(dirs.artifacts, 'results.jsonl'), 'utf8')).toBe('');
  });

  test('from a file under HOME', async () => {
    const dirs = makeRunDirs();
    await runTask(dirs, { task: task(), harness: fakeHarness('result-file', ['{prompt}'], { results: { from: 'file', path: 'out/final.md' } }) });
    expect(readJsonl(path.join(dirs.artifacts, 'results.jsonl'))).toEqual([{ from: 'file' }]);
  });
});

describe('config layers', () => {
  test('harness < pool < task: json and toml merge, text replaced, per base', async () => {
    const dirs = makeRunDirs();
    const harness = fakeHarness('echo', ['{prompt}'], {
      config: {
        files: [
          { path: '.tool/config.toml', format: 'toml', content: 'model = "a"\nsandbox_mode = "danger-full-access"\n[features]\nx = true\nlist = [1, 2]\n' },
          { path: '.tool/settings.json', format: 'json', content: '{"a": 1, "nested": {"keep": true, "over": "harness"}, "arr": [1, 2]}' },
          { path: 'notes.txt', content: 'harness text' },
          { path: 'agent.json', base: 'workdir', format: 'json', content: '{"layer": "harness"}' },
        ],
      },
    });
    const p = pool({ config: { files: [{ path: '.tool/config.toml', format: 'toml', content: '[features]\ny = "pool"\nlist = [3]\n' }] } });
    const t = task({
      config: {
        files: [
          { path: '.tool/settings.json', format: 'json', content: '{"nested": {"over": "task"}, "arr": [9]}' },
          { path: 'notes.txt', content: 'task text' },
        ],
      },
    });
    const r = await runTask(dirs, { task: t, harness, pool: p });
    expect(r.code).toBe(0);
    expect(fs.readFileSync(path.join(dirs.home, '.tool/config.toml'), 'utf8')).toBe(
      'model = "a"\nsandbox_mode = "danger-full-access"\n\n[features]\nx = true\nlist = [ 3 ]\ny = "pool"\n',
    );
    expect(JSON.parse(fs.readFileSync(path.join(dirs.home, '.tool/settings.json'), 'utf8'))).toEqual({
      a: 1,
      nested: { keep: true, over: 'task' },
      arr: [9],
    });
    expect(fs.readFileSync(path.join(dirs.home, 'notes.txt'), 'utf8')).toBe('task text');
    expect(fs.readFileSync(path.join(dirs.workspace, 'agent.json'), 'utf8')).toBe('{"layer": "harness"}');
  });
});

describe('invalid specs: exit 2 before any side effect', () => {
  async function expectInvalid(specs: { task: unknown; harness: unknown; pool?: unknown }, message: RegExp, env?: NodeJS.ProcessEnv) {
    const dirs = makeRunDirs();
    const r = await runTask(dirs, specs, env ? { env } : {});
    expect(r.code).toBe(2);
    expect(r.status.outcome).toBe('invalid_spec');
    expect(r.status.message).toMatch(message);
    expect(r.stderr).toMatch(message);
    // Nothing fetched, written or run.
    for (const d of [dirs.workspace, dirs.home, dirs.tmp]) expect(fs.existsSync(d)).toBe(false);
    expect(fs.readdirSync(dirs.artifacts)).toEqual(['status.json']);
    return r;
  }

  test('malformed task JSON', async () => {
    await expectInvalid({ task: '{"apiVersion": "paddock.dev/v1alpha1", "kind": "Task",', harness: fakeHarness('echo') }, /Task spec .*task\.json: not valid JSON/);
  });

  test('a schema-invalid task names every bad field', async () => {
    const r = await expectInvalid(
      { task: { ...task(), promt: 'typo', timeoutSeconds: 0, sources: [{ name: 'r', type: 'git_https', url: 'https://h/x', branch: 'a', ref: 'b' }] }, harness: fakeHarness('echo') },
      /invalid/,
    );
    expect(r.status.problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^promt: unknown field/),
        expect.stringMatching(/^timeoutSeconds: must be >= 1/),
        expect.stringMatching(/^sources\[0\]: give either branch or ref/),
      ]),
    );
  });

  test('a schema-invalid harness', async () => {
    await expectInvalid({ task: task(), harness: { ...fakeHarness('echo'), promptVia: 'shell' } }, /promptVia: must be one of/);
  });

  test('a harness whose promptVia disagrees with its command', async () => {
    await expectInvalid(
      { task: task(), harness: { ...fakeHarness('echo'), promptVia: 'stdin' } },
      /harness "fake" promptVia: is "stdin" but its command implies "argv"/,
    );
    await expectInvalid(
      { task: task(), harness: { ...fakeHarness('echo', []), promptVia: 'file' } },
      /harness "fake" promptVia: is "file" but its command implies "stdin"/,
    );
  });

  test('a missing task file', async () => {
    const dirs = makeRunDirs();
    const r = await runTask(dirs, { task: task(), harness: fakeHarness('echo') }, { task: path.join(dirs.root, 'nope.json') });
    expect(r.code).toBe(2);
    expect(r.status.message).toMatch(/nope\.json: cannot read it \(ENOENT\)/);
  });

  test('specs that do not fit together', async () => {
    await expectInvalid({ task: task({ harness: 'other' }), harness: fakeHarness('echo'), pool: pool({ harnesses: ['codex'] }) }, /task\.harness: is "other"[\s\S]*pool "local" does not run harness "fake"/);
  });

  test('{model} without a model', async () => {
    await expectInvalid({ task: task(), harness: fakeHarness('echo', ['{model}', '{prompt}']) }, /task\.model: is not set and harness "fake" has no defaultModel/);
  });

  test('a config layer whose content does not parse', async () => {
    await expectInvalid(
      { task: task({ config: { files: [{ path: 'c.toml', format: 'toml', content: 'a = = 1' }] } }), harness: fakeHarness('echo') },
      /task "demo-task" config\.files\[0\] \(home\/c\.toml\): content is not valid TOML/,
    );
  });

  test('a credential the pool declares but the pod did not get, named', async () => {
    await expectInvalid(
      { task: task(), harness: fakeHarness('echo'), pool: pool({ credentials: { env: [{ name: 'MODEL_API_KEY', secret: 'model', key: 'api-key' }], files: [{ path: '.cfg/auth.json', source: '/nonexistent/auth.json' }] } }) },
      /MODEL_API_KEY is not set in the runner's environment \(the pod should get it from Secret "model" key "api-key"\)[\s\S]*cannot read \/nonexistent\/auth\.json/,
    );
  });

  test('--sandbox bwrap where bwrap is missing: a clear message', async () => {
    const dirs = makeRunDirs();
    const r = await runTask(dirs, { task: task(), harness: fakeHarness('echo') }, { sandbox: 'bwrap', env: { PATH: '/nonexistent/bin' } });
    expect(r.code).toBe(2);
    expect(r.status.message).toMatch(/--sandbox bwrap: bwrap \(bubblewrap\) is not installed or not on PATH/);
    expect(fs.existsSync(dirs.workspace)).toBe(false);
  });
});
