/**
 * Bad AgentPlatform args, against Pulumi's mocks (pulumi.runtime.setMocks):
 * each is a pulumi.ResourceError on the component whose message names the field.
 */
import './support/mocks'; // first: installs the mocks
import * as pulumi from '@pulumi/pulumi';
import { examplePlatform } from '../../stacks/example-platform';
import { AgentPlatform, AgentPlatformArgs } from '../../stacks/pulumi';

let count = 0;
function errorOf(args: AgentPlatformArgs): pulumi.ResourceError {
  const name = `bad-${count++}`;
  try {
    new AgentPlatform(name, args);
  } catch (err) {
    expect(pulumi.ResourceError.isInstance(err)).toBe(true);
    const error = err as pulumi.ResourceError;
    expect(error.resource).toBeInstanceOf(AgentPlatform);
    expect(error.hideStack).toBe(true);
    expect(error.message.startsWith(`AgentPlatform "${name}": `)).toBe(true);
    return error;
  }
  throw new Error('expected a ResourceError');
}

const codexOnly = examplePlatform.pools.filter((p) => p.name === 'codex');

describe('AgentPlatform args under Pulumi mocks: every mistake is a ResourceError naming the field', () => {
  test.each<[string, AgentPlatformArgs, RegExp]>([
    // Shapes the component checks before building anything.
    ['pools missing', { namespace: 'x' } as any, /args\.pools: must be a list/],
    ['pools not a list', { pools: 'codex' } as any, /args\.pools: must be a list, e\.g\. \[\{ name: "codex"/],
    ['a pool without harnesses', { pools: [{ name: 'codex' }] } as any, /args\.pools\[0\]\.harnesses: must be a list/],
    ['egress rules not a list', { ...examplePlatform, egress: [{ name: 'web', rules: { cidr: '0.0.0.0/0' } }] } as any, /args\.egress\[0\]\.rules: must be a list/],
    ['credential grants missing', { ...examplePlatform, credentials: [{ secretName: 'openai-api', keys: ['OPENAI_API_KEY'] }] } as any, /args\.credentials\[0\]\.grants: must map pool names/],
    ['credentialValues not an object', { ...examplePlatform, credentialValues: 'sk-...' } as any, /args\.credentialValues: must map Secret names/],
    // The construct library's own validation, wrapped.
    ['a bad pool replica count', { pools: [{ ...codexOnly[0], egress: [], replicas: -1 }] }, /invalid platform definition: AgentPool "codex": replicas: must be an integer from 0 to 1000, got -1/],
    ['a bad namespace', { ...examplePlatform, namespace: 'Agents_NS' }, /Platform: namespace: "Agents_NS" is not a valid name.*did you mean "agents-ns"/],
    ['an unknown harness preset', { pools: [{ name: 'codex', harnesses: ['codexx'] }] }, /codexx/],
    ['a task for an unknown pool', { ...examplePlatform, tasks: [{ name: 't', pool: 'ghost', prompt: 'p' }] }, /AgentTask "t": pool "ghost" does not exist.*declared pools: codex, claude/],
    ['a grant to an unknown pool', { ...examplePlatform, credentials: [{ secretName: 'openai-api', keys: ['OPENAI_API_KEY'], grants: { gemini: {} } }] }, /credential "openai-api": grants name pool "gemini", which is not defined/],
    ['a pool naming an unknown allowlist', { ...examplePlatform, pools: [{ ...codexOnly[0], egress: ['internet'] }] }, /pool "codex": egress names allowlist "internet", which is not defined; defined: /],
    // Rules about the finished tree (synthesis validations, the security policy).
    ['an API key in a pool env (policy: no secrets in ConfigMaps)', { ...examplePlatform, pools: [{ ...codexOnly[0], env: { OPENAI_API_KEY: 'sk-proj-abcdefghijklmnopqrstuvwxyz012345' } }], tasks: [], credentials: [] }, /invalid platform definition: Paddock: synthesis failed with \d+ problem\(s\):.*ConfigMap "pool-codex": key "pool\.json" contains what looks like an OpenAI API key/s],
    // Args the component adds.
    ['a value for a Secret no credential uses', { ...examplePlatform, credentialValues: { 'openai-key': { OPENAI_API_KEY: 'x' } } }, /credentialValues\["openai-key"\]: no credential uses Secret "openai-key"; declare it in credentials \(declared: openai-api, anthropic-api\)/],
    ['a key the Secret was not declared with', { ...examplePlatform, credentialValues: { 'openai-api': { OPENAI_API_KEY: 'x', OPENAI_ORG: 'y' } } }, /credentialValues\["openai-api"\]\["OPENAI_ORG"\]: Secret "openai-api" is declared with keys OPENAI_API_KEY \(credentials\[0\]\.keys\)/],
    ['a declared key without a value', { ...examplePlatform, credentialValues: { 'openai-api': {} } }, /credentialValues\["openai-api"\]: missing "OPENAI_API_KEY", declared in credentials\[0\]\.keys/],
    ['an undefined value', { ...examplePlatform, credentialValues: { 'anthropic-api': { ANTHROPIC_API_KEY: undefined as any } } }, /credentialValues\["anthropic-api"\]\["ANTHROPIC_API_KEY"\]: has no value/],
  ])('%s', (_label, args, message) => {
    expect(errorOf(args).message).toMatch(message);
  });

  test('values for a Secret the platform synthesizes itself (a literal credential added with extend)', () => {
    const { CredentialSecret } = require('../../constructs');
    const message = errorOf({
      ...examplePlatform,
      extend: (platform) => CredentialSecret.fromLiteral(platform, 'lit', { secretName: 'openai-api', values: { OPENAI_API_KEY: 'x' }, allowPlaintextInManifests: true }),
      credentialValues: { 'openai-api': { OPENAI_API_KEY: 'y' } },
    }).message;
    expect(message).toMatch(/credentialValues\["openai-api"\]: the platform already synthesizes Secret "openai-api"/);
  });

  test('all problems with credentialValues are reported at once', () => {
    const message = errorOf({ ...examplePlatform, credentialValues: { nope: { A: 'a' }, 'openai-api': { WRONG: 'b' } } }).message;
    expect(message).toMatch(/credentialValues\["nope"\]/);
    expect(message).toMatch(/credentialValues\["openai-api"\]\["WRONG"\]/);
    expect(message).toMatch(/credentialValues\["openai-api"\]: missing "OPENAI_API_KEY"/);
  });

  test('nothing is registered under a component whose args are bad', () => {
    const error = errorOf({ ...examplePlatform, credentialValues: { nope: { A: 'a' } } });
    expect((error.resource as AgentPlatform).resources).toBeUndefined();
  });
});
