/**
 * `paddock local --sandbox bwrap`, tried as an attacker would: a hostile agent
 * (test/runner/fixtures/hostile-agent.js snoop) on a local warm worker reads every
 * /proc entry and every file of paddock local's output folder it can, and posts it out.
 * Unsandboxed it finds what a same-uid process can (the lease token, an earlier run's
 * checkout, the worker's /proc); under bubblewrap it finds none of them. The controller
 * runs in-process (runLocal), the workers are real `paddock worker` processes.
 */
import * as fs from 'fs';
import * as path from 'path';
import { stringify as toYaml } from 'yaml';
import { runLocal } from '../../controller/local';
import type { HarnessSpec } from '../../policy/specs';
import { startLootServer } from '../support/loot-server';
import { makeTmpDir } from '../support/runner-fixtures';
import { memoryPlatform, taskSpec } from './support/platform';

jest.setTimeout(90_000);

const HOSTILE = path.resolve(__dirname, '..', 'runner', 'fixtures', 'hostile-agent.js');
const EARLIER_RUN_TEXT = 'the private checkout of an earlier run 4e7a';

async function snoopLocal(sandbox: boolean): Promise<{ code: number; loot: string; token: string }> {
  const root = makeTmpDir('paddock-local-sandbox-');
  const loot = await startLootServer();
  const out = path.join(root, 'out');
  try {
    const harness: HarnessSpec = {
      apiVersion: 'paddock.dev/v1alpha1',
      kind: 'Harness',
      name: 'hostile',
      capability: 'harness.hostile',
      command: [process.execPath, HOSTILE, 'snoop', loot.url, out, '{prompt}'],
      promptVia: 'argv',
      results: { from: 'stdout' },
    };
    const objects = memoryPlatform(harness, { tasks: [taskSpec('snoop', { harness: 'hostile' })] }).list('ConfigMap');
    const dist = path.join(root, 'dist');
    fs.mkdirSync(dist);
    fs.writeFileSync(path.join(dist, 'paddock.k8s.yaml'), objects.map((o) => toYaml({ ...o, metadata: { name: o.metadata.name, namespace: 'paddock', labels: o.metadata.labels } })).join('---\n'));
    // An earlier run the worker kept (paddock local keeps them), in the worker's folder.
    const earlier = path.join(out, 'work', 'warm-1', 'earlier-run', 'workspace');
    fs.mkdirSync(earlier, { recursive: true });
    fs.writeFileSync(path.join(earlier, 'secret.txt'), EARLIER_RUN_TEXT);
    let token = '';
    const code = await runLocal({
      dir: dist,
      out,
      env: { PATH: process.env.PATH },
      log: () => undefined,
      workerStdio: 'pipe',
      timeoutMs: 60_000,
      onReady: ({ tokenFile }) => (token = fs.readFileSync(tokenFile, 'utf8').trim()),
      ...(sandbox ? { sandbox: 'bwrap' as const } : {}),
    });
    return { code, loot: loot.text(), token };
  } finally {
    await loot.close();
  }
}

describe('paddock local: a hostile agent snoops the worker', () => {
  test('unsandboxed it reads what its uid can: the lease token, an earlier run, the worker\'s /proc (what --sandbox is for)', async () => {
    const r = await snoopLocal(false);
    expect(r.code).toBe(0);
    expect(r.token.length).toBeGreaterThan(20);
    expect(r.loot).toContain(r.token);
    expect(r.loot).toContain(EARLIER_RUN_TEXT);
    expect(r.loot).toMatch(/== \/proc\/\d+\/cmdline\n[^\n]*\n\S*paddock\.js\nworker\n/);
  });

  test('with --sandbox bwrap it reads none of them', async () => {
    const r = await snoopLocal(true);
    expect(r.code).toBe(0);
    // It did snoop: its own env and its checkout's parent folders.
    expect(r.loot).toMatch(/^== env\n/);
    expect(r.loot).not.toContain(r.token);
    expect(r.loot).not.toContain(EARLIER_RUN_TEXT);
    expect(r.loot).not.toMatch(/\npaddock\.js\nworker\n|\/paddock\.js\nworker\n/);
  });
});
