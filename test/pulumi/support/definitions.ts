import type { PlatformDefinition } from '../../../stacks/platform-definition';

/** Definition that reaches the parts the example does not: kata/none/custom sandboxes, file and git grants, several harnesses. */
export const wider: PlatformDefinition = {
  namespace: 'agents',
  imageOptions: { registry: 'registry.example.com/paddock', tag: '1.2.3' },
  controller: { replicas: 2, port: 9090 },
  apiServer: { cidrs: ['10.0.0.1/32'], ports: [6443] },
  egress: [
    { name: 'openai', rules: [{ cidr: '203.0.113.0/24', ports: [443] }, { cidr: '198.51.100.0/24' }] },
    { name: 'git', rules: [{ cidr: '198.51.100.0/24' }, { cidr: '2001:db8::/32', ports: [443, 9418] }] },
  ],
  credentials: [
    { secretName: 'openai-api', keys: ['OPENAI_API_KEY'], grants: { codex: {} } },
    { secretName: 'codex-auth', keys: ['auth.json'], grants: { codex: { files: { '.codex/auth.json': 'auth.json' }, exposeToAgent: true } } },
    { secretName: 'git-token', keys: ['token'], grants: { codex: { git: { host: 'github.com', key: 'token' } }, mixed: { git: { host: 'github.com', key: 'token' } } } },
    { secretName: 'model-keys', keys: ['GEMINI_API_KEY', 'OPENAI_API_KEY', 'ANTHROPIC_API_KEY'], grants: { mixed: { env: { GEMINI_API_KEY: 'GEMINI_API_KEY', OPENAI_API_KEY: 'OPENAI_API_KEY' } }, debug: { env: { ANTHROPIC_API_KEY: 'ANTHROPIC_API_KEY' } } } },
  ],
  pools: [
    {
      name: 'codex',
      harnesses: [{ preset: 'codex', defaultModel: 'gpt-5-codex' }],
      mode: 'warm',
      replicas: 3,
      sandbox: { type: 'kata' },
      egress: ['openai'],
      resources: { requests: { cpu: '1', memory: '2Gi' }, limits: { cpu: '4', memory: '8Gi' } },
      nodeSelector: { 'sandbox.example.com/kata': 'true' },
      env: { RUST_LOG: 'info' },
    },
    { name: 'mixed', harnesses: ['gemini-cli', 'opencode'], sandbox: { type: 'none' }, egress: ['git'] },
    { name: 'debug', harnesses: ['claude-code'], replicas: 0, sandbox: { type: 'custom', handler: 'runsc-debug', options: { overhead: { cpu: '50m', memory: '32Mi' } } } },
  ],
  tasks: [
    { name: 'fix-tests', pool: 'codex', prompt: 'Fix the failing test.', sources: [{ url: 'https://github.com/octocat/Hello-World.git', ref: 'v1.0.0' }], timeoutMinutes: 5, env: { CI: '1' } },
    { name: 'docs', pool: 'mixed', harness: 'gemini-cli', model: 'gemini-2.5-pro', prompt: 'Write the docs.' },
  ],
};

