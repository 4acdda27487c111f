import { validateSpec } from '../policy/specs';

const task = {
  apiVersion: 'paddock.dev/v1alpha1',
  kind: 'Task',
  name: 'fix-readme',
  pool: 'codex',
  harness: 'codex',
  prompt: 'Fix the README',
  sources: [{ name: 'repo', type: 'git_https', url: 'https://github.com/example/repo.git', branch: 'main' }],
};

describe('spec schemas', () => {
  test('a valid task passes', () => {
    expect(validateSpec('Task', task)).toEqual([]);
  });
  test.each([
    [{ ...task, promt: 'x' }, /promt: unknown field/],
    [{ ...task, name: 'Fix_Readme' }, /name: must match pattern/],
    [{ ...task, prompt: undefined }, /prompt: is required/],
    [{ ...task, timeoutSeconds: 0 }, /timeoutSeconds: must be >= 1/],
    [{ ...task, env: { '1BAD': 'x' } }, /env: has an invalid key/],
    [{ ...task, sources: [{ ...task.sources[0], ref: 'v1' }] }, /sources\[0\]: give either branch or ref/],
    [{ ...task, sources: [{ ...task.sources[0], subPath: '../etc' }] }, /sources\[0\]\.subPath: must match pattern/],
    [{ ...task, config: { files: [{ path: '/etc/passwd', content: '' }] } }, /config\.files\[0\]\.path/],
    [{ ...task, config: { files: [{ path: 'a', content: '', format: 'yaml' }] } }, /config\.files\[0\]\.format: must be one of "json", "toml", "text"/],
    // One rule for http:// sources: the schema (which the API and the runner use) refuses them as AgentTask does.
    [{ ...task, sources: [{ ...task.sources[0], url: 'http://github.com/example/repo.git' }] }, /sources\[0\]\.url: must be an https:\/\/ URL .*http:\/\/ is refused .*use https:\/\//],
    [{ ...task, config: { files: [{ path: '.', content: '' }] } }, /config\.files\[0\]\.path: must name a file relative to its base, with no empty or "\." segment/],
  ])('an invalid task is rejected naming the field (%#)', (spec, message) => {
    expect(validateSpec('Task', spec).join('\n')).toMatch(message);
  });
});

describe('the validators generated at build time (lib/policy/spec-validators.js)', () => {
  const path = require('path');
  const generated = require(path.join(__dirname, '..', 'lib', 'policy', 'spec-validators.js'));
  const { newSpecAjv, SCHEMA_IDS } = require('../policy/specs');
  const compiled = newSpecAjv();
  const samples: Array<['Task' | 'Harness' | 'Pool', unknown]> = [
    ['Task', task],
    ['Task', { ...task, promt: 'x', timeoutSeconds: 0 }],
    ['Task', { ...task, sources: [{ ...task.sources[0], ref: 'v1' }] }],
    ['Task', 'not an object'],
    ['Harness', { apiVersion: 'paddock.dev/v1alpha1', kind: 'Harness', name: 'x', capability: 'harness.x', command: ['x'], promptVia: 'stdin', results: { from: 'stdout' } }],
    ['Harness', { apiVersion: 'paddock.dev/v1alpha1', kind: 'Harness', name: 'X', capability: '', command: [], promptVia: 'tty', results: {} }],
    ['Pool', { apiVersion: 'paddock.dev/v1alpha1', kind: 'Pool', name: 'p', capabilities: ['harness.x'], harnesses: ['x'], credentials: { env: [{ name: 'K' }] } }],
    ['Pool', { apiVersion: 'paddock.dev/v1alpha1', kind: 'Pool', name: 'p', capabilities: [], harnesses: ['x'], credentials: { git: [{ host: 'h' }] } }],
  ];

  test.each(samples)('agree with the schemas compiled from source: %s %#', (kind, spec) => {
    const fromSource = compiled.getSchema(SCHEMA_IDS[kind]);
    const validOne = fromSource(spec);
    expect(generated[kind](spec)).toBe(validOne);
    expect(generated[kind].errors ?? null).toEqual(fromSource.errors ?? null);
  });
});
