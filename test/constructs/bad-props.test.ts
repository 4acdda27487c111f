import { Duration } from 'cdk8s';
import { AgentPool, AgentTask, CredentialSecret, EgressAllowlist, Harness, SandboxProfile } from '../../constructs';
import { newPlatform } from '../support/synth';

/** Each row builds something wrong and names the message that must explain it. */
const cases: Array<[string, (ctx: ReturnType<typeof newPlatform>) => unknown, RegExp]> = [
  ['empty namespace', () => newPlatform({ namespace: '' }), /Platform: namespace: must be a non-empty name/],
  ['invalid namespace', () => newPlatform({ namespace: 'Agents_NS' }), /Platform: namespace: "Agents_NS" is not a valid name.*did you mean "agents-ns"/],
  ['too-long namespace', () => newPlatform({ namespace: 'a'.repeat(64) }), /at most 63/],
  ['zero controller replicas', () => newPlatform({ controller: { replicas: 0 } }), /controller\.replicas: must be an integer from 1 to 10, got 0/],
  ['privileged controller port', () => newPlatform({ controller: { port: 80 } }), /controller\.port: must be an integer from 1024/],
  ['bad controller memory', () => newPlatform({ controller: { resources: { limits: { memory: '1 GB' } } } }), /controller\.resources\.limits\.memory: "1 GB" is not a Kubernetes quantity/],
  ['empty API server CIDRs', () => newPlatform({ apiServer: { cidrs: [] } }), /apiServer\.cidrs must list at least one CIDR/],
  ['pool with no harness', ({ platform }) => new AgentPool(platform, 'p', { harnesses: [] }), /AgentPool "p": harnesses must list at least one harness/],
  ['pool with invalid name', ({ platform }) => new AgentPool(platform, 'Codex Pool', { harnesses: [Harness.codex()] }), /AgentPool "Codex Pool": name: .*did you mean "codex-pool"/],
  ['negative replicas', ({ platform }) => new AgentPool(platform, 'p', { harnesses: [Harness.codex()], mode: 'warm', replicas: -1 }), /AgentPool "p": replicas: must be an integer from 0 to 1000, got -1/],
  ['warm replicas on a job-mode pool', ({ platform }) => new AgentPool(platform, 'p', { harnesses: [Harness.codex()], replicas: 2 }), /AgentPool "p": replicas: a pool in mode "job" \(the default\) runs one Job per task and no warm workers; remove replicas, or set mode: "warm"/],
  ['fractional replicas', ({ platform }) => new AgentPool(platform, 'p', { harnesses: [Harness.codex()], mode: 'warm', replicas: 1.5 }), /replicas: must be an integer/],
  ['pool without a harness for its capability', ({ platform }) => new AgentPool(platform, 'p', { harnesses: [Harness.codex()], capabilities: ['harness.gemini-cli'] }), /capability "harness.gemini-cli" has no harness in this pool/],
  ['duplicate pool name', ({ platform }) => { new AgentPool(platform, 'a', { name: 'p', harnesses: [Harness.codex()] }); new AgentPool(platform, 'b', { name: 'p', harnesses: [Harness.codex()] }); }, /AgentPool "b": name "p" is taken by AgentPool "a" \(test\/platform\/a\).*give one another name, e\.g\. new AgentPool\(scope, "b", \{ name: "p-2"/],
  ['bad pool env name', ({ platform }) => new AgentPool(platform, 'p', { harnesses: [Harness.codex()], env: { 'MY-VAR': 'x' } }), /env\.MY-VAR: "MY-VAR" is not a valid environment variable name/],
  ['bad pool resources', ({ platform }) => new AgentPool(platform, 'p', { harnesses: [Harness.codex()], resources: { requests: { gpu: '1' } as any } }), /resources\.requests\.gpu: unknown resource/],
  ['unknown preset', () => Harness.fromPreset('codexx'), /Harness preset "codexx" does not exist; use one of "claude-code", "codex", "copilot", "gemini-cli", "opencode"/],
  ['custom harness without image', () => new Harness({ name: 'x', capability: 'harness.x', command: ['x', '{prompt}'] }), /image is required for a custom harness/],
  ['harness with shell-string command', () => new Harness({ name: 'x', capability: 'harness.x', command: 'x {prompt}' as any, image: 'i' }), /command must be an argv array/],
  ['harness with bad capability', () => new Harness({ name: 'x', capability: 'Harness X', command: ['x'], image: 'i' }), /capability "Harness X" is invalid/],
  ['two harnesses with one name', ({ platform }) => { new AgentPool(platform, 'a', { harnesses: [Harness.codex()] }); new AgentPool(platform, 'b', { harnesses: [Harness.codex({ defaultModel: 'other' })] }); }, /two different harnesses share this name/],
  ['task naming a missing pool', ({ platform }) => { new AgentPool(platform, 'codex', { harnesses: [Harness.codex()] }); new AgentTask(platform, 't', { pool: 'codexx', prompt: 'p' }); }, /AgentTask "t": pool "codexx" does not exist in platform "paddock"; declared pools: codex/],
  ['task with empty prompt', ({ platform }) => new AgentTask(platform, 't', { pool: new AgentPool(platform, 'p', { harnesses: [Harness.codex()] }), prompt: '  ' }), /AgentTask "t": prompt: must be a non-empty string/],
  ['task name too long for its Job', ({ platform }) => new AgentTask(platform, 'a'.repeat(53), { pool: new AgentPool(platform, 'p', { harnesses: [Harness.codex()] }), prompt: 'p' }), /at most 52/],
  ['task with a harness the pool lacks', ({ platform }) => new AgentTask(platform, 't', { pool: new AgentPool(platform, 'p', { harnesses: [Harness.codex()] }), harness: 'claude-code', prompt: 'p' }), /harness "claude-code" is not one of pool "p"'s harnesses \(codex\)/],
  ['task ambiguous harness', ({ platform }) => new AgentTask(platform, 't', { pool: new AgentPool(platform, 'p', { harnesses: [Harness.codex(), Harness.claudeCode()] }), prompt: 'p' }), /runs several harnesses \(codex, claude-code\); name one/],
  ['task timeout too long', ({ platform }) => new AgentTask(platform, 't', { pool: new AgentPool(platform, 'p', { harnesses: [Harness.codex()] }), prompt: 'p', timeout: Duration.days(2) }), /timeout: must be an integer from 1 to 86400/],
  ['task priority out of range', ({ platform }) => new AgentTask(platform, 't', { pool: new AgentPool(platform, 'p', { harnesses: [Harness.codex()] }), prompt: 'p', priority: 1001 }), /AgentTask "t": priority: must be an integer from 0 to 1000, got 1001/],
  ['source over http', ({ platform }) => new AgentTask(platform, 't', { pool: new AgentPool(platform, 'p', { harnesses: [Harness.codex()] }), prompt: 'p', sources: [{ url: 'http://github.com/a/b.git' }] }), /must use https:\/\//],
  ['source URL with credentials', ({ platform }) => new AgentTask(platform, 't', { pool: new AgentPool(platform, 'p', { harnesses: [Harness.codex()] }), prompt: 'p', sources: [{ url: 'https://user:tok@github.com/a/b.git' }] }), /must not carry credentials; grant a git credential/],
  ['source with branch and ref', ({ platform }) => new AgentTask(platform, 't', { pool: new AgentPool(platform, 'p', { harnesses: [Harness.codex()] }), prompt: 'p', sources: [{ url: 'https://github.com/a/b.git', branch: 'main', ref: 'v1' }] }), /give either branch or ref, not both/],
  ['source subPath escaping the repo', ({ platform }) => new AgentTask(platform, 't', { pool: new AgentPool(platform, 'p', { harnesses: [Harness.codex()] }), prompt: 'p', sources: [{ url: 'https://github.com/a/b.git', subPath: '../x' }] }), /subPath "..\/x" must be a directory inside the repository/],
  ['two sources in one directory', ({ platform }) => new AgentTask(platform, 't', { pool: new AgentPool(platform, 'p', { harnesses: [Harness.codex()] }), prompt: 'p', sources: [{ url: 'https://github.com/a/b.git' }, { url: 'https://gitlab.com/c/b.git' }] }), /two sources share the directory "b"/],
  ['source depth 0', ({ platform }) => new AgentTask(platform, 't', { pool: new AgentPool(platform, 'p', { harnesses: [Harness.codex()] }), prompt: 'p', sources: [{ url: 'https://github.com/a/b.git', depth: 0 }] }), /depth: must be an integer >= 1/],
  ['literal credential without opt-in', ({ platform }) => CredentialSecret.fromLiteral(platform, 'c', { secretName: 's', values: { K: 'v' }, allowPlaintextInManifests: false }), /would be written in plain text.*fromSecretName/],
  ['credential without keys', ({ platform }) => CredentialSecret.fromSecretName(platform, 'c', 'openai', []), /list the Secret's keys/],
  ['credential with invalid secret name', ({ platform }) => CredentialSecret.fromSecretName(platform, 'c', 'OpenAI Key', ['K']), /secret name "OpenAI Key" is not a valid Secret name/],
  ['grant of an undeclared key', ({ platform }) => CredentialSecret.fromSecretName(platform, 'c', 'openai', ['K']).grantTo(new AgentPool(platform, 'p', { harnesses: [Harness.codex()] }), { env: { OPENAI_API_KEY: 'api-key' } }), /names key "api-key", which the Secret "openai" was not declared with; declared keys: K/],
  ['default grant of a key that is no env name', ({ platform }) => CredentialSecret.fromSecretName(platform, 'c', 'codex-auth', ['auth.json']).grantTo(new AgentPool(platform, 'p', { harnesses: [Harness.codex()] })), /key "auth.json" is not a valid environment variable name; map it explicitly/],
  ['credential file outside HOME', ({ platform }) => CredentialSecret.fromSecretName(platform, 'c', 'codex-auth', ['auth.json']).grantTo(new AgentPool(platform, 'p', { harnesses: [Harness.codex()] }), { files: { '/etc/auth.json': 'auth.json' }, exposeToAgent: true }), /must be relative to the agent's HOME/],
  ['credential file without exposeToAgent', ({ platform }) => CredentialSecret.fromSecretName(platform, 'c', 'codex-auth', ['auth.json']).grantTo(new AgentPool(platform, 'p', { harnesses: [Harness.codex()] }), { files: { '.codex/auth.json': 'auth.json' } }), /files land in the agent's HOME, where the agent reads them; set exposeToAgent: true/],
  ['an env key the gateway does not know, without exposeToAgent', ({ platform }) => CredentialSecret.fromSecretName(platform, 'c', 'x', ['SOME_TOKEN']).grantTo(new AgentPool(platform, 'p', { harnesses: [Harness.codex()] })), /env.SOME_TOKEN is no model key the gateway holds \(it knows OPENAI_API_KEY, .*\); to give it to the agent as an environment variable, set exposeToAgent: true/],
  ['CIDR without mask', ({ platform }) => new EgressAllowlist(platform, 'e', { rules: [{ cidr: '10.0.0.1' }] }), /CIDR mask is missing in IPv4: "10.0.0.1". Did you mean "10.0.0.1\/32"\?/],
  ['CIDR with host bits', ({ platform }) => new EgressAllowlist(platform, 'e', { rules: [{ cidr: '203.0.113.7/24' }] }), /has host bits set. Did you mean "203.0.113.0\/24"\?/],
  ['egress port 0', ({ platform }) => new EgressAllowlist(platform, 'e', { rules: [{ cidr: '203.0.113.0/24', ports: [0] }] }), /ports\[0\]: must be an integer from 1 to 65535, got 0/],
  ['egress rule with both cidr and host', ({ platform }) => new EgressAllowlist(platform, 'e', { rules: [{ cidr: '203.0.113.0/24', host: 'a.com' }] }), /give exactly one of cidr or host/],
  ['host with a scheme', ({ platform }) => new EgressAllowlist(platform, 'e', { rules: [{ host: 'https://api.openai.com' }] }), /host: "https:\/\/api.openai.com" contains a URL scheme \("https:\/\/"\); write only the name: "api.openai.com"/],
  ['host with a wildcard', ({ platform }) => new EgressAllowlist(platform, 'e', { rules: [{ host: '*.github.com' }] }), /host: "\*.github.com" uses a wildcard; write host ".github.com"/],
  ['custom sandbox without handler', () => SandboxProfile.custom({ handler: '' }), /handler "" is invalid/],
  ['sandbox uid 0', () => SandboxProfile.gvisor({ uid: 0 }), /uid: must be an integer from 1/],
  // Issue 15: input that would synthesize broken or dangerous output, refused at construction.
  ['two tasks with one name', ({ platform }) => { const pool = new AgentPool(platform, 'p', { harnesses: [Harness.codex()] }); new AgentTask(platform, 'a', { name: 't', pool, prompt: 'x' }); new AgentTask(platform, 'b', { name: 't', pool, prompt: 'y' }); }, /AgentTask "t" \(test\/platform\/b\): its ConfigMap "task-t" would overwrite the ConfigMap of the same name of AgentTask "t" \(test\/platform\/a\).*give one task another name/],
  ['allowlists x and proxy-x', ({ platform }) => { new EgressAllowlist(platform, 'x'); new EgressAllowlist(platform, 'proxy-x'); }, /EgressAllowlist "proxy-x" .*NetworkPolicy "egress-proxy-x" would overwrite the NetworkPolicy of the same name of EgressAllowlist "x".*give this allowlist another name/],
  ['allowlists proxy-x and then x', ({ platform }) => { new EgressAllowlist(platform, 'proxy-x'); new EgressAllowlist(platform, 'x'); }, /EgressAllowlist "x" .*"egress-proxy-x" would overwrite .*EgressAllowlist "proxy-x"/],
  ['Secrets a.b and a-b mounted as files', ({ platform }) => { const pool = new AgentPool(platform, 'p', { harnesses: [Harness.codex()] }); CredentialSecret.fromSecretName(platform, 'one', 'a.b', ['k']).grantTo(pool, { files: { 'one.json': 'k' }, exposeToAgent: true }); CredentialSecret.fromSecretName(platform, 'two', 'a-b', ['k']).grantTo(pool, { files: { 'two.json': 'k' }, exposeToAgent: true }); }, /AgentPool "p": Secrets "a\.b" and "a-b" would share the pod volume "secret-a-b".*rename one of the Secrets/],
  ...['kube-system', 'kube-public', 'kube-node-lease', 'default'].map((ns): (typeof cases)[number] => [`namespace ${ns}`, () => newPlatform({ namespace: ns }), new RegExp(`Platform: namespace "${ns}" is shared .*Give it a namespace of its own, e\\.g\\. namespace: "paddock"`)]),
  ['harness image with a newline', () => new Harness({ name: 'x', capability: 'harness.x', command: ['x'], image: 'ghcr.io/x/agent:1\nkind: Pod' }), /Harness "x": image: "ghcr\.io\/x\/agent:1\\nkind: Pod" is not an image reference: no spaces, newlines or control characters/],
  ['pool image with a newline', ({ platform }) => new AgentPool(platform, 'p', { harnesses: [Harness.codex()], image: 'img\n' }), /AgentPool "p": image: .* is not an image reference/],
  ['controller image with a space', () => newPlatform({ controller: { image: 'ghcr.io/x y' } }), /Platform: controller\.image: .* is not an image reference/],
  ['image registry with a newline', () => Harness.codex({ imageOptions: { registry: 'ghcr.io/x\n' } }), /Harness "codex": image: .* is not an image reference/],
  ['bad nodeSelector key', ({ platform }) => new AgentPool(platform, 'p', { harnesses: [Harness.codex()], nodeSelector: { 'bad key!': 'x' } }), /AgentPool "p": nodeSelector: key "bad key!" is not a valid label key.*e\.g\. "kubernetes\.io\/arch"/],
  ['bad nodeSelector value', ({ platform }) => new AgentPool(platform, 'p', { harnesses: [Harness.codex()], nodeSelector: { 'sandbox.example.com/kata': 'yes please' } }), /nodeSelector\.sandbox\.example\.com\/kata: "yes please" is not a valid label value.*no spaces or '\/'/],
  ['bad sandbox nodeSelector key', () => SandboxProfile.gvisor({ nodeSelector: { '/kata': 'true' } }), /SandboxProfile\.gvisor: nodeSelector: key "\/kata" is not a valid label key/],
  ['empty program in the command', () => new Harness({ name: 'x', capability: 'harness.x', command: [''], image: 'i' }), /Harness "x": command\[0\]: the program to run is empty; write its name or path, e\.g\. "codex"/],
  ['config file path "."', ({ platform }) => new AgentPool(platform, 'p', { harnesses: [Harness.codex()], config: [{ path: '.', content: 'x' }] }), /AgentPool "p": invalid Pool spec:.*config\.files\[0\]\.path: must name a file relative to its base, with no empty or "\." segment/s],
  ['task config file path "a/./b"', ({ platform }) => new AgentTask(platform, 't', { pool: new AgentPool(platform, 'p', { harnesses: [Harness.codex()] }), prompt: 'x', config: [{ path: 'a/./b', content: 'x' }] }), /AgentTask "t": invalid Task spec:.*config\.files\[0\]\.path: must name a file/s],
  ['cluster DNS label value with a space', () => newPlatform({ clusterDns: { podLabels: { 'k8s-app': 'kube dns' } } }), /Platform: clusterDns\.podLabels\.k8s-app: "kube dns" is not a valid label value.*e\.g\. "kube-dns"/],
  ['cluster DNS label value with a slash', () => newPlatform({ clusterDns: { podLabels: { 'k8s-app': 'kube/dns' } } }), /clusterDns\.podLabels\.k8s-app: "kube\/dns" is not a valid label value/],
  ['empty cluster DNS selector', () => newPlatform({ clusterDns: { podLabels: {} } }), /clusterDns\.podLabels must select the DNS pods/],
  ['sandbox bad size limit', () => SandboxProfile.gvisor({ workspaceSizeLimit: '10 gigs' }), /workspaceSizeLimit: "10 gigs" is not a Kubernetes quantity/],
];

describe('bad props fail at once with a message naming the field', () => {
  test('the table covers at least 25 rules', () => {
    expect(cases.length).toBeGreaterThanOrEqual(25);
  });

  test.each(cases)('%s', (_name, build, message) => {
    const ctx = newPlatform();
    expect(() => build(ctx)).toThrow(message);
  });
});
