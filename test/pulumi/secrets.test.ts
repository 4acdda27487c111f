/**
 * Credential values through the AgentPlatform component, against Pulumi's mocks
 * (pulumi.runtime.setMocks): what the SDK would send the engine, which stores
 * secret-marked inputs encrypted. No real engine, state file or cluster.
 */
import { isSecretEnvelope, plaintextOccurrences, registrations, unwrapSecrets, valueOf } from './support/mocks'; // first: installs the mocks
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { spawnSync } from 'child_process';
import * as path from 'path';
import { examplePlatform } from '../../stacks/example-platform';
import { findCredentialLeaks, synthesizePlatform } from '../../stacks/pulumi';
import { deploy } from './support/deploy';
import { wider } from './support/definitions';

const OPENAI_KEY = 'sk-proj-TESTONLY0123456789abcdefghijklmnop';
const AUTH_JSON = '{"OPENAI_API_KEY":"auth-json-TESTONLY-4242424242"}';
const GIT_TOKEN = 'ghp_TESTONLY000000000000000000000000000000';

describe('credential Secrets under Pulumi mocks', () => {
  let deployed: Awaited<ReturnType<typeof deploy>>;
  beforeAll(async () => {
    deployed = await deploy('creds', {
      ...wider,
      credentialValues: {
        'openai-api': { OPENAI_API_KEY: pulumi.secret(OPENAI_KEY) },
        // A plain string and a plain Output: the component makes them secrets too.
        'codex-auth': { 'auth.json': AUTH_JSON },
        'git-token': { token: pulumi.output(GIT_TOKEN) },
      },
    });
  });
  const secrets = () => deployed.children.filter((c) => c.inputs.kind === 'Secret');

  test('one Secret per credentialValues entry, in the platform namespace, with the declared keys', () => {
    expect(secrets().map((s) => s.inputs.metadata.name).sort()).toEqual(['codex-auth', 'git-token', 'openai-api']);
    const openai = secrets().find((s) => s.inputs.metadata.name === 'openai-api')!;
    expect(unwrapSecrets(openai.inputs)).toEqual({
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'Opaque',
      metadata: {
        name: 'openai-api',
        namespace: 'agents',
        labels: {
          'app.kubernetes.io/name': 'paddock',
          'app.kubernetes.io/instance': 'agents',
          'app.kubernetes.io/component': 'credentials',
          'app.kubernetes.io/part-of': 'paddock',
          'app.kubernetes.io/managed-by': 'paddock',
        },
      },
      stringData: { OPENAI_API_KEY: OPENAI_KEY },
    });
  });

  test('each Secret\'s stringData reaches the engine marked secret, however the value was given', () => {
    for (const s of secrets()) {
      expect(isSecretEnvelope(s.inputs.stringData)).toBe(true);
      expect(Object.keys(s.inputs)).not.toContain('data');
    }
  });

  test('the Secrets ask the engine to keep data and stringData outputs secret; stringData is a secret Output', async () => {
    for (const s of secrets()) {
      expect(s.additionalSecretOutputs).toEqual(expect.arrayContaining(['data', 'stringData']));
      expect(await pulumi.isSecret((s.resource as k8s.core.v1.Secret).stringData)).toBe(true);
    }
  });

  test('no credential value appears in plain text in any registered input, walked recursively', () => {
    const everything = registrations.filter((r) => r.name.startsWith('creds'));
    expect(everything.length).toBe(deployed.children.length + 1); // + the component
    for (const value of [OPENAI_KEY, AUTH_JSON, GIT_TOKEN]) {
      const found = everything.flatMap((r) => plaintextOccurrences(r.inputs, value).map((p) => `${r.type} ${r.name}: ${p}`));
      expect(found).toEqual([]);
    }
    // ...while the values are there, inside the secret envelopes (the walk would see them otherwise).
    const unwrapped = JSON.stringify(everything.map((r) => unwrapSecrets(r.inputs)));
    for (const value of [OPENAI_KEY, GIT_TOKEN]) expect(unwrapped).toContain(value);
    expect(unwrapped).toContain(JSON.stringify(AUTH_JSON).slice(1, -1));
  });

  test('the plaintext walk is not vacuous: it finds a value outside an envelope, in keys, strings and arrays', () => {
    const envelope = registrations.find((r) => r.name === 'creds-secret-agents-openai-api')!.inputs.stringData;
    expect(plaintextOccurrences({ a: [{ b: `x${OPENAI_KEY}y` }], [OPENAI_KEY]: 1, s: envelope }, OPENAI_KEY)).toEqual(['a[0].b', `.${OPENAI_KEY} (key)`]);
    expect(plaintextOccurrences(envelope, OPENAI_KEY)).toEqual([]);
    expect(plaintextOccurrences(unwrapSecrets(envelope), OPENAI_KEY)).toEqual(['OPENAI_API_KEY']);
  });

  test('the component\'s outputs carry no credential value', async () => {
    const p = deployed.platform;
    const outputs = await Promise.all([p.namespace, p.poolNames, p.controllerService, p.controllerUrl, p.taskJobNames, p.credentialSecretNames].map((o) => valueOf(o as pulumi.Output<unknown>)));
    for (const value of [OPENAI_KEY, AUTH_JSON, GIT_TOKEN]) expect(JSON.stringify(outputs)).not.toContain(value);
    expect(await pulumi.isSecret(p.credentialSecretNames)).toBe(false);
  });

  test('pods reference the Secrets by name, as with cdk8s synth, and start only after them', () => {
    const codex = deployed.children.find((c) => c.inputs.kind === 'Deployment' && c.inputs.metadata.name === 'pool-codex')!;
    const podSpec = codex.inputs.spec.template.spec;
    // The agent's pod: only the file granted with exposeToAgent; the model key is the gateway's.
    expect(JSON.stringify(podSpec.containers[0].env)).not.toContain('secretKeyRef');
    expect(podSpec.volumes.map((v: any) => v.secret?.secretName).filter(Boolean).sort()).toEqual(['codex-auth']);
    const gateway = deployed.children.find((c) => c.inputs.kind === 'Deployment' && c.inputs.metadata.name === 'paddock-model-gateway')!;
    expect(gateway.inputs.spec.template.spec.volumes.map((v: any) => v.secret?.secretName).filter(Boolean)).toContain('openai-api');
    for (const s of secrets()) expect(codex.dependsOn).toContain(s.resource);
    const ns = deployed.children.find((c) => c.inputs.kind === 'Namespace')!;
    for (const s of secrets()) expect(s.dependsOn).toEqual([ns.resource]);
  });
});

describe('credential leak check under Pulumi mocks', () => {
  test('findCredentialLeaks names every object that holds a value in plain text', () => {
    const { objects } = synthesizePlatform({ ...examplePlatform, pools: examplePlatform.pools.map((p) => (p.name === 'codex' ? { ...p, env: { NOTE: 'key hunter2-hunter2' } } : p)) });
    expect(findCredentialLeaks(objects, ['hunter2-hunter2'])).toEqual(['ConfigMap "pool-codex"']);
    expect(findCredentialLeaks(objects, ['not-in-there-at-all'])).toEqual([]);
    // Short values would match by chance: they are not searched for.
    expect(findCredentialLeaks(objects, ['paddock'])).toEqual([]);
  });

  test('a credential value also written into the platform fails the program, naming where (built package, child process)', () => {
    // The check throws inside the Secret's input, so the failure is an unhandled rejection: Pulumi's
    // run harness reports those as errors of the program, plain node exits with them. Jest would
    // claim them for this test, hence a child process running the built package (lib/, built by
    // jest's global setup) under the same mocks.
    const script = `
      const pulumi = require('@pulumi/pulumi');
      pulumi.runtime.setMocks({
        newResource: (a) => { console.log('registered ' + a.type + ' ' + a.name); return { id: a.name + '-id', state: a.inputs }; },
        call: (a) => a.inputs,
      }, 'paddock', 'test', false);
      const { AgentPlatform, examplePlatform } = require('./lib/stacks/pulumi');
      new AgentPlatform('leaky', {
        ...examplePlatform,
        tasks: [{ name: 'leak', pool: 'codex', prompt: 'Use the key hunter2-hunter2 to call the API.' }],
        credentialValues: { 'openai-api': { OPENAI_API_KEY: pulumi.secret('hunter2-hunter2') } },
      });`;
    const run = spawnSync(process.execPath, ['-e', script], { cwd: path.join(__dirname, '..', '..'), encoding: 'utf8', timeout: 20000 });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(/AgentPlatform "leaky": a value of Secret "openai-api" appears in plain text in ConfigMap "task-leak"/);
    // As written: not behind the serializer's 'error serializing property "outputs": ...'.
    expect(run.stderr).not.toMatch(/error serializing property/);
    expect(run.stdout).not.toContain('kubernetes:core/v1:Secret');
  });
});
