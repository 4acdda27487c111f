/** Config layers: merge rules, and writes that cannot escape their base directory. */
import * as fs from 'fs';
import * as path from 'path';
import { deepMerge, planConfigFiles, writeConfigFiles } from '../../runner/config-layers';
import { makeTmpDir } from '../support/runner-fixtures';

describe('planConfigFiles', () => {
  test('a single layer is written verbatim (comments kept)', () => {
    const content = '# keep me\nmodel = "x"\n';
    expect(planConfigFiles([{ label: 'harness', layer: { files: [{ path: 'c.toml', format: 'toml', content }] } }])).toEqual([
      { base: 'home', path: 'c.toml', format: 'toml', content, from: ['harness'] },
    ]);
  });

  test('same path, different base: two files; a later layer with another format replaces', () => {
    const files = planConfigFiles([
      { label: 'harness', layer: { files: [{ path: 'a.json', format: 'json', content: '{"a":1}' }, { path: 'a.json', base: 'workdir', format: 'json', content: '{"w":1}' }] } },
      { label: 'pool' },
      { label: 'task', layer: { files: [{ path: 'a.json', format: 'text', content: 'plain' }] } },
    ]);
    expect(files.map((f) => [f.base, f.path, f.format, f.content, f.from])).toEqual([
      ['home', 'a.json', 'text', 'plain', ['harness', 'task']],
      ['workdir', 'a.json', 'json', '{"w":1}', ['harness']],
    ]);
  });

  test('deepMerge: objects by key, arrays and scalars replaced, "__proto__" stays a plain key', () => {
    const merged = deepMerge({ a: { b: 1, c: [1, 2] }, d: 1 }, JSON.parse('{"a": {"c": [3]}, "__proto__": {"polluted": true}}')) as any;
    expect(merged).toEqual(JSON.parse('{"a": {"b": 1, "c": [3]}, "d": 1, "__proto__": {"polluted": true}}'));
    expect(merged.polluted).toBeUndefined();
    expect(({} as any).polluted).toBeUndefined();
  });

  test('invalid JSON content names the layer and file', () => {
    expect(() => planConfigFiles([{ label: 'pool "p"', layer: { files: [{ path: 'x.json', format: 'json', content: '{' }] } }])).toThrow(
      /pool "p" config\.files\[0\] \(home\/x\.json\): content is not valid JSON/,
    );
  });
});

describe('writeConfigFiles', () => {
  test('a symlinked directory in a fetched repository cannot redirect a write outside the workdir', () => {
    const root = makeTmpDir();
    const workdir = path.join(root, 'workdir');
    const outside = path.join(root, 'outside');
    fs.mkdirSync(workdir);
    fs.mkdirSync(outside);
    fs.symlinkSync(outside, path.join(workdir, '.tool'));
    const files = planConfigFiles([{ label: 'task', layer: { files: [{ path: '.tool/config.json', base: 'workdir', format: 'json', content: '{}' }] } }]);
    expect(() => writeConfigFiles(files, { home: root, workdir })).toThrow(/resolves outside/);
    expect(fs.readdirSync(outside)).toEqual([]);
  });

  test('a symlink at the file itself is replaced, not followed', () => {
    const root = makeTmpDir();
    const target = path.join(root, 'victim.txt');
    fs.writeFileSync(target, 'original');
    const home = path.join(root, 'home');
    fs.mkdirSync(home);
    fs.symlinkSync(target, path.join(home, 'notes.txt'));
    writeConfigFiles(planConfigFiles([{ label: 'task', layer: { files: [{ path: 'notes.txt', content: 'new' }] } }]), { home, workdir: home });
    expect(fs.readFileSync(target, 'utf8')).toBe('original');
    expect(fs.readFileSync(path.join(home, 'notes.txt'), 'utf8')).toBe('new');
    expect(fs.lstatSync(path.join(home, 'notes.txt')).isSymbolicLink()).toBe(false);
  });
});
