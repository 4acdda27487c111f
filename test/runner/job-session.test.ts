/**
 * A session task's Job, runner side: the Job the controller builds from the pool's
 * template (reconcile's buildJob) mounts the session's stored state; `paddock run` runs
 * each container as the pod does (its args, its mounts: the thin kubelet stand-in) and
 * continues the session from the mounted file: the earlier turns in the prompt (or the
 * CLI's own conversation restored, for a harness that resumes natively), the last
 * run's change applied on the fresh checkout. Afterwards the whole new state travels in
 * the log lines after the patches, as many as the termination message says.
 */
import * as fs from 'fs';
import * as path from 'path';
import { gzipSync } from 'zlib';
import { AgentPool, AgentTask, Harness, SandboxProfile } from '../../constructs';
import { buildJob } from '../../controller/reconcile';
import { harnessFromConfigMap, poolFromConfigMap, taskFromConfigMap } from '../../controller/observe';
import { decodeTerminationMessage, patchesFromLog } from '../../core/protocol';
import { packCliState, sessionFromLog, SessionState, unpackCliState } from '../../core/session';
import { TALK_AGENT } from '../controller/support/platform';
import { writeTerminationMessage } from '../../runner/termination-message';
import { runJobPod } from '../support/kubelet';
import { demoGitServerForSuite } from '../support/git-server';
import { Capture, makeTmpDir } from '../support/runner-fixtures';
import { newPlatform, synth } from '../support/synth';

jest.setTimeout(60_000);

// Keeps the prompt it got in HOME, appends the prompt's last line to notes.txt of its checkout, prints the file.
const AGENT = `const fs = require('fs'); let p = ''; process.stdin.on('data', (d) => (p += d)); process.stdin.on('end', () => { fs.writeFileSync(process.env.HOME + '/prompt.txt', p); fs.appendFileSync('notes.txt', p.trim().split('\\n').pop() + '\\n'); process.stdout.write('NOTES\\n' + fs.readFileSync('notes.txt', 'utf8')); });`;

const suite = demoGitServerForSuite('paddock-job-session-');

/** The platform's ConfigMaps and the Job the controller would create for task "two" of session "notes". */
function sessionJob(stored?: SessionState, harness = new Harness({ name: 'notes', capability: 'harness.notes', image: 'registry.example.com/paddock/notes:1', command: [process.execPath, '-e', AGENT] })) {
  const { chart, platform } = newPlatform();
  const pool = new AgentPool(platform, 'jobs', { harnesses: [harness], sandbox: SandboxProfile.none() });
  new AgentTask(platform, 'two', { pool, prompt: 'line from two', sources: [{ url: `${suite.git.url}/demo.git`, name: 'demo' }], session: { name: 'notes' } });
  const objects = synth(chart);
  const cm = (component: string) => objects.filter((o) => o.kind === 'ConfigMap' && o.metadata?.labels?.['app.kubernetes.io/component'] === component);
  const task = taskFromConfigMap(cm('task')[0] as any)!;
  const built = buildJob(task, poolFromConfigMap(cm('pool')[0] as any)!, new Map(cm('harness').map((h) => [harness.name, harnessFromConfigMap(h as any)!])), { name: 'notes', pool: 'jobs' });
  if (!('job' in built)) throw new Error(built.problem);
  const session = stored ? [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'session-notes' }, data: { 'state.json': JSON.stringify(stored) } }] : [];
  return { objects: [...objects, ...session], podSpec: (built.job.spec as any).template.spec, synthesizedJobs: objects.filter((o) => o.kind === 'Job') };
}

const patchOf = (text: string) => gzipSync(Buffer.from(text)).toString('base64');
const NEW_NOTES = 'diff --git a/notes.txt b/notes.txt\nnew file mode 100644\n--- /dev/null\n+++ b/notes.txt\n@@ -0,0 +1 @@\n+line from one\n';

test('the Job reads the mounted session state, continues it, and prints the whole new state in its log after the patches', async () => {
  const stored: SessionState = {
    name: 'notes',
    pool: 'jobs',
    harness: 'notes',
    turns: [{ task: 'one', prompt: 'line from one', output: 'NOTES\nline from one\n' }],
    patches: { demo: { base: suite.repo.mainSha, patch: patchOf(NEW_NOTES), bytes: NEW_NOTES.length } },
    resume: 'transcript',
  };
  const { objects, podSpec, synthesizedJobs } = sessionJob(stored);
  // A session task's Job is the controller's to create (it waits for the session's lock): none in dist/.
  expect(synthesizedJobs).toEqual([]);
  const runner = podSpec.containers.find((c: any) => c.name === 'runner');
  expect(runner.args).toEqual(['run', '--phase', 'agent', '--session-state', '/etc/paddock/session/state.json']);
  // Only the agent's container gets it: the fetch step needs nothing of the session.
  expect(JSON.stringify(podSpec.initContainers)).not.toContain('session');

  const stderr = new Capture();
  const pod = await runJobPod(path.join(suite.root, 'pod-two'), podSpec, objects, {}, { PATH: process.env.PATH, GIT_SSL_CAINFO: suite.git.caFile }, { stdout: new Capture(), stderr });
  expect(pod.code).toBe(0);
  expect(stderr.text).toMatch(/session "notes": source "demo": continued from the previous run's change/);
  // The earlier turn reached the CLI as a transcript, and the first run's file was in the checkout.
  const prompt = fs.readFileSync(pod.at('/home/agent/prompt.txt'), 'utf8');
  expect(prompt).toMatch(/^This task continues session "notes"\. The earlier turns, oldest first:\n\n--- turn 1 \(task one\)\nUser:\nline from one\n/);
  expect(prompt.endsWith('--- now\nline from two')).toBe(true);
  expect(fs.readFileSync(pod.at('/workspace/demo/notes.txt'), 'utf8')).toBe('line from one\nline from two\n');

  // The report: how many log lines of each; the lines: the patch, then the state.
  const report = decodeTerminationMessage(pod.message)!;
  expect(report.status).toMatchObject({ outcome: 'succeeded', patchLogLines: 1, sessionLogLines: 1 });
  expect(pod.logLines.map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual(['paddock/v1 patch', 'paddock/v1 session']);
  const log = `[agent] output\n${pod.logLines.join('\n')}\n`;
  const { session, problem } = sessionFromLog(log);
  expect(problem).toBeUndefined();
  expect(session).toEqual({
    name: 'notes',
    harness: 'notes',
    turns: [stored.turns[0], { task: 'two', prompt: 'line from two', output: 'NOTES\nline from one\nline from two\n' }],
    // The change travels on its own lines, once.
    patches: {},
    resume: 'transcript',
  });
  expect(Object.keys(patchesFromLog(log))).toEqual(['demo']);
});

test('a session deleted before the pod started: the runner fails saying so (the mount is optional)', async () => {
  const { objects, podSpec } = sessionJob();
  const stderr = new Capture();
  const pod = await runJobPod(path.join(suite.root, 'pod-gone'), podSpec, objects, {}, { PATH: process.env.PATH, GIT_SSL_CAINFO: suite.git.caFile }, { stdout: new Capture(), stderr });
  const report = decodeTerminationMessage(pod.message)!;
  expect(report.status).toMatchObject({
    outcome: 'invalid_spec',
    message: expect.stringMatching(/^--session-state \/.*\/etc\/paddock\/session\/state.json: session "notes" has no stored state \(it was deleted after the task was started\?\); submit the task again, with session.create: true to start the session anew$/),
  });
  expect(pod.logLines).toEqual([]);
});

test('the state travels whole: fields the runner writes beyond the known ones come back as written, and the size is checked', () => {
  const artifacts = makeTmpDir();
  const status = { task: 't', outcome: 'succeeded', runnerExitCode: 0 };
  fs.writeFileSync(path.join(artifacts, 'status.json'), JSON.stringify(status));
  // A CLI's own saved conversation: large and incompressible, many log lines.
  const cli = { format: 'gzip+base64', data: require('crypto').randomBytes(60_000).toString('base64') };
  const written = { name: 's', harness: 'h', turns: [], patches: { src: { base: 'b', patch: 'p', bytes: 1 } }, resume: 'transcript', cli };
  fs.writeFileSync(path.join(artifacts, 'session.json'), JSON.stringify(written));
  const termFile = path.join(artifacts, 'termination-log');
  const lines = writeTerminationMessage(artifacts, termFile)!;
  expect(lines.length).toBeGreaterThan(4);
  expect(decodeTerminationMessage(fs.readFileSync(termFile, 'utf8'))!.status.sessionLogLines).toBe(lines.length);
  expect(sessionFromLog(lines.join('\n')).session).toEqual({ ...written, patches: {} });
  // Read back, a state over the cap is refused with its size; garbage is refused too.
  const huge = gzipSync(Buffer.from(JSON.stringify({ name: 's', turns: [], blob: 'x'.repeat(2 * 768 * 1024) }))).toString('base64');
  expect(sessionFromLog(`paddock/v1 session ${huge}`).problem).toMatch(/^the session state is over 1572864 bytes, over the limit of 786432; start a new session$/);
  expect(sessionFromLog('paddock/v1 session bm90IGd6aXA=').problem).toMatch(/^the session state in the runner's log cannot be read \(/);
  expect(sessionFromLog('no such lines').problem).toBe('the runner reported no session state in its log');
});

test('a harness that resumes natively: the Job restores the CLI conversation from the mounted state, resumes it, and sends the grown conversation back', async () => {
  const id = '4f7c2a1e-0b9d-4c3a-8e21-5d6f7a8b9c0d';
  const earlier = 'user: line from one\n';
  const stored: SessionState = {
    name: 'notes',
    pool: 'jobs',
    harness: 'talk',
    turns: [{ task: 'one', prompt: 'line from one', output: `--start ${id}\n${earlier}` }],
    patches: {},
    cli: { id, state: packCliState([{ path: `.talk/${id}.log`, mode: 0o600, content: Buffer.from(earlier) }]), bytes: earlier.length, files: 1 },
    resume: 'native',
  };
  // talk-agent.js keeps its conversation in ~/.talk/ID.log; --resume fails when it is missing.
  const talk = new Harness({ name: 'talk', capability: 'harness.talk', image: 'registry.example.com/paddock/talk:1', command: [process.execPath, TALK_AGENT, '{prompt}'], promptVia: 'argv', resume: { start: ['--start', '{session_id}'], argv: ['--resume', '{session_id}'], state: ['.talk'] } });
  const { objects, podSpec } = sessionJob(stored, talk);
  const stdout = new Capture();
  const pod = await runJobPod(path.join(suite.root, 'pod-native'), podSpec, objects, {}, { PATH: process.env.PATH, GIT_SSL_CAINFO: suite.git.caFile }, { stdout, stderr: new Capture() });
  expect(pod.code).toBe(0);
  // The CLI resumed its own conversation (no transcript in the prompt): it printed both turns.
  expect(stdout.text).toContain(`[agent] --resume ${id}\n[agent] user: line from one\n[agent] user: line from two\n`);
  expect(stdout.text).not.toContain('This task continues session');
  const { session, problem } = sessionFromLog(`${pod.logLines.join('\n')}\n`);
  expect(problem).toBeUndefined();
  expect(session).toMatchObject({ resume: 'native', cli: { id, files: 1 } });
  expect(unpackCliState(session!.cli!.state!).map((f) => [f.path, f.content.toString()])).toEqual([[`.talk/${id}.log`, 'user: line from one\nuser: line from two\n']]);
});
