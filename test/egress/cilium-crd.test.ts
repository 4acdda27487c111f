/**
 * Every synthesized CiliumNetworkPolicy is checked at synth time against Cilium's own CRD
 * schema (a copy ships in policy/schemas/vendor/cilium), and the Cilium backend denies
 * what toFQDNs could otherwise reach: private, link-local, loopback and IPv4-mapped
 * ranges, and the metadata service.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ApiObject } from 'cdk8s';
import { AgentTask, EgressAllowlist, Harness } from '../../constructs';
import { validateCiliumNetworkPolicy } from '../../policy/cilium';
import { conformancePath } from '../support/conformance';
import { find, keyedPool, newPlatform, synth, synthProblems } from '../support/synth';

function ciliumPlatform(rules: ConstructorParameters<typeof EgressAllowlist>[2] extends infer P ? (P extends { rules?: infer R } ? R : never) : never) {
  const ctx = newPlatform();
  const pool = keyedPool(ctx.platform, 'codex', { harnesses: [Harness.codex()] });
  const list = new EgressAllowlist(ctx.platform, 'agents', { backend: 'cilium', rules });
  pool.allowEgressTo(list);
  return { ...ctx, pool, list };
}

describe("CiliumNetworkPolicy against Cilium's CRD schema", () => {
  test('the shipped copy is byte for byte the conformance copy, with its license', () => {
    const vendored = path.join(__dirname, '..', '..', 'policy', 'schemas', 'vendor', 'cilium');
    const shared = conformancePath('cilium');
    expect(fs.readFileSync(path.join(vendored, 'ciliumnetworkpolicy_v2.json'))).toEqual(fs.readFileSync(path.join(shared, 'ciliumnetworkpolicy_v2.json')));
    expect(fs.readFileSync(path.join(vendored, 'LICENSE.datree'), 'utf8')).toMatch(/MIT License/);
  });

  test('what Paddock synthesizes passes it: deny rules for the blocked ranges, the CIDR rules they name excepted', () => {
    const { chart } = ciliumPlatform([{ host: '.githubusercontent.com' }, { cidr: '10.1.0.0/16' }, { cidr: '0.0.0.0/0' }]);
    const objects = synth(chart);
    const cnp = find(objects, 'CiliumNetworkPolicy', 'egress-agents');
    expect(validateCiliumNetworkPolicy(cnp)).toEqual([]);
    const deny = cnp.spec.egressDeny[0].toCIDRSet;
    expect(deny).toContainEqual({ cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] });
    for (const cidr of ['169.254.0.0/16', 'fe80::/10', '::ffff:0:0/96', '127.0.0.0/8', '169.254.169.254/32', 'fd00:ec2::254/128']) {
      expect(deny).toContainEqual({ cidr });
    }
  });

  test('a suffix host of 253 characters fails synthesis with the CRD\'s own limit', () => {
    const long = `.${Array.from({ length: 4 }, () => 'a'.repeat(62)).join('.')}`; // 4*62 + 3 dots = 251 + "." prefix
    const host = `.b${long}`.slice(0, 254);
    const { chart } = ciliumPlatform([{ host }]);
    expect(synthProblems(chart).join('\n')).toMatch(/CiliumNetworkPolicy "egress-agents": spec\.egress\.\d+\.toFQDNs\.\d+\.matchPattern: must NOT have more than 255 characters \(Cilium's CRD\)/);
  });

  test('a CiliumNetworkPolicy another construct adds to the platform is checked too', () => {
    const { chart, platform } = newPlatform();
    new ApiObject(platform, 'user-cnp', {
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name: 'user', namespace: 'paddock' },
      spec: { endpointSelector: { matchLabels: { app: 'web server' } }, egres: [] },
    });
    const problems = synthProblems(chart).join('\n');
    expect(problems).toMatch(/CiliumNetworkPolicy "user": spec\.endpointSelector\.matchLabels\.app: must match pattern/);
    expect(problems).toMatch(/CiliumNetworkPolicy "user": spec: must NOT have additional properties \(egres\)/);
  });
});

describe('the cloud metadata service is out of reach under every backend', () => {
  test.each(['proxy', 'cilium', 'networkpolicy'] as const)('%s: metadata names and the metadata address are refused at construction', (backend) => {
    const { platform } = newPlatform();
    const list = new EgressAllowlist(platform, 'e', { backend });
    expect(() => list.addRule({ host: 'metadata.google.internal' })).toThrow(/host: "metadata\.google\.internal" is a cloud metadata service name; no allowlist may reach it/);
    expect(() => list.addRule({ host: 'metadata' })).toThrow(/"metadata" is a cloud metadata service name/);
    expect(() => list.addRule({ host: 'instance-data.ec2.internal' })).toThrow(/cloud metadata service name/);
    expect(() => list.addRule({ host: '.google.internal' })).toThrow(/suffix "\.google\.internal" covers the cloud metadata service name "metadata\.google\.internal"; list the names you need as exact rules/);
    expect(() => list.addRule({ host: '169.254.169.254' })).toThrow(/is an IP address/);
    expect(() => list.addRule({ cidr: '169.254.169.254/32' })).toThrow(/cidr "169\.254\.169\.254\/32" is the cloud metadata service \(169\.254\.169\.254\/32\), which no allowlist may reach/);
    expect(() => list.addRule({ cidr: 'fd00:ec2::254/128' })).toThrow(/is the cloud metadata service/);
  });

  test('a CIDR rule naming the link-local range still excepts the metadata address', () => {
    const { chart, platform } = newPlatform();
    const pool = keyedPool(platform, 'codex', { harnesses: [Harness.codex()] });
    pool.allowEgressTo(new EgressAllowlist(platform, 'e', { backend: 'networkpolicy', rules: [{ cidr: '169.254.0.0/16', ports: [80] }] }));
    const np = find(synth(chart), 'NetworkPolicy', 'egress-e');
    expect(np.spec.egress.map((r: any) => r.to[0].ipBlock).filter(Boolean)).toEqual([{ cidr: '169.254.0.0/16', except: ['169.254.169.254/32'] }]);
  });

  test("a task's git source on a metadata name fails synthesis", () => {
    const { chart, platform } = newPlatform();
    const pool = keyedPool(platform, 'codex', { harnesses: [Harness.codex()] });
    pool.allowEgressTo(new EgressAllowlist(platform, 'e'));
    new AgentTask(platform, 't', { pool, prompt: 'x', sources: [{ url: 'https://metadata.google.internal/computeMetadata/v1.git' }] });
    expect(synthProblems(chart).join('\n')).toMatch(/task t source v1 .*"metadata\.google\.internal" is a cloud metadata service name/);
  });
});
