/**
 * The restricted checker against Kubernetes' own Pod Security Admission fixtures
 * (../shared/conformance/psa, from kubernetes/pod-security-admission test/testdata):
 * every pass pod is accepted and every fail pod is refused, for every version there.
 */
import * as fs from 'fs';
import * as path from 'path';
import { parse } from 'yaml';
import { checkPodSecurityRestricted, KubeObject } from '../../policy/rules';
import { conformancePath } from '../support/conformance';

const root = conformancePath('psa', 'restricted');
const versions = fs.readdirSync(root).filter((v) => /^v1\.\d+$/.test(v)).sort();

function fixtures(version: string, outcome: 'pass' | 'fail'): Array<[string, KubeObject]> {
  const dir = path.join(root, version, outcome);
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => [f, parse(fs.readFileSync(path.join(dir, f), 'utf8')) as KubeObject]);
}

describe('Pod Security "restricted" checker against the PodSecurity admission fixtures', () => {
  test('the fixtures are there: at least v1.30 and a later version', () => {
    expect(versions).toContain('v1.30');
    expect(versions.length).toBeGreaterThanOrEqual(2);
  });

  describe.each(versions)('%s', (version) => {
    test.each(fixtures(version, 'pass'))('accepts pass/%s', (_file, pod) => {
      expect(checkPodSecurityRestricted(pod, version)).toEqual([]);
    });
    test.each(fixtures(version, 'fail'))('refuses fail/%s', (_file, pod) => {
      expect(checkPodSecurityRestricted(pod, version).length).toBeGreaterThan(0);
    });
  });

  test('version-gated rules: a newer sysctl passes only from the version that allows it', () => {
    const pod = fixtures('v1.37', 'pass').find(([f]) => f === 'sysctls1.yaml')![1];
    expect(checkPodSecurityRestricted(pod, 'v1.37')).toEqual([]);
    expect(checkPodSecurityRestricted(pod, 'v1.30').join('\n')).toMatch(/sysctls "net\.ipv4\.tcp_slow_start_after_idle" is not a safe sysctl in Pod Security v1\.30/);
  });

  test('Windows hostProcess is refused on its own (the fixtures also set hostNetwork)', () => {
    for (const [file, pod] of fixtures('v1.30', 'fail').filter(([f]) => f.startsWith('windowshostprocess'))) {
      const { hostNetwork: _dropped, ...spec } = pod.spec as Record<string, unknown>;
      const problems = checkPodSecurityRestricted({ ...pod, spec });
      expect([file, problems.length]).toEqual([file, expect.any(Number)]);
      expect(problems.length).toBeGreaterThan(0);
      expect(problems.every((p) => /windowsOptions\.hostProcess must not be true/.test(p))).toBe(true);
    }
  });

  test('an unknown version is an error naming the form to write', () => {
    expect(() => checkPodSecurityRestricted(fixtures('v1.30', 'pass')[0][1], '1.30')).toThrow(/"1\.30" is not of the form "v1\.30"/);
  });
});
