/**
 * `--sandbox bwrap`: the agent can write only its workspace, HOME and a private /tmp.
 * Needs bubblewrap (`apt-get install bubblewrap`). In CI a missing bwrap fails the suite;
 * elsewhere it is skipped with a warning (the missing-bwrap message itself is tested in
 * run.test.ts).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { fakeHarness, isAlive, makeRunDirs, runTask, task, waitFor } from '../support/runner-fixtures';

const bwrapWorks = spawnSync('bwrap', ['--ro-bind', '/', '/', '--unshare-pid', '--', 'true']).status === 0;
const describeWithBwrap = bwrapWorks || process.env.CI ? describe : describe.skip;
if (!bwrapWorks) {
  // eslint-disable-next-line no-console
  console.warn('sandbox.test.ts skipped: bwrap is not installed or cannot create a sandbox here');
}

describeWithBwrap('--sandbox bwrap', () => {
  test('workspace, HOME and a private TMPDIR writable; /tmp, the artifacts and the rest of the file system are not', async () => {
    const dirs = makeRunDirs();
    const probe = path.join(__dirname, 'fixtures', '.sandbox-probe');
    fs.rmSync(probe, { force: true });
    const targets = [
      path.join(dirs.workspace, 'in-workspace.txt'),
      path.join(dirs.home, 'in-home.txt'),
      '$TMPDIR/in-tmp.txt',
      path.join(dirs.artifacts, 'status.json'),
      probe,
      '/etc/paddock-sandbox-probe',
      '/tmp/paddock-sandbox-probe.txt',
    ];
    const r = await runTask(dirs, { task: task(), harness: fakeHarness('write-outside', targets) }, { sandbox: 'bwrap' });
    fs.rmSync(probe, { force: true });
    expect(r.code).toBe(0);
    const attempts = r.report().attempts;
    expect(attempts[targets[0]]).toBe('written');
    expect(attempts[targets[1]]).toBe('written');
    expect(attempts[targets[2]]).toBe('written');
    expect(['EROFS', 'ENOENT']).toContain(attempts[targets[3]]);
    expect(attempts[probe]).toBe('EROFS');
    expect(attempts['/etc/paddock-sandbox-probe']).toBe('EROFS');
    // /tmp stays visible (programs may live there) but read-only.
    expect(attempts['/tmp/paddock-sandbox-probe.txt']).toBe('EROFS');
    expect(fs.existsSync('/tmp/paddock-sandbox-probe.txt')).toBe(false);
    expect(r.report().cwd).toBe(dirs.workspace);
  });

  test('a timeout stops everything inside the sandbox, grandchildren included', async () => {
    const dirs = makeRunDirs();
    const marker = `PADDOCK_MARKER=${path.basename(dirs.root)}`;
    const r = await runTask(dirs, { task: task({ timeoutSeconds: 1, env: { PADDOCK_MARKER: path.basename(dirs.root) } }), harness: fakeHarness('hang') }, { sandbox: 'bwrap' });
    expect(r.code).toBe(4);
    expect(r.stdout).toContain('[agent] partial output before hanging');
    const survivors = (): number[] =>
      fs
        .readdirSync('/proc')
        .filter((d) => /^\d+$/.test(d))
        .filter((pid) => {
          try {
            return isAlive(Number(pid)) && fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(marker);
          } catch {
            return false;
          }
        })
        .map(Number);
    expect(await waitFor(() => survivors().length === 0, 2000)).toBe(true);
  });

  test('the prompt file is visible inside the sandbox', async () => {
    const dirs = makeRunDirs();
    const r = await runTask(dirs, { task: task({ prompt: 'from a file' }), harness: fakeHarness('prompt-file', ['{prompt_file}']) }, { sandbox: 'bwrap' });
    expect(r.code).toBe(0);
    expect(r.report().promptFileContent).toBe('from a file');
  });
});
