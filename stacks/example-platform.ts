import type { EgressRule } from '../constructs';
import type { PlatformDefinition } from './platform-definition';

/** Package registries the agents may install from (HTTPS only, through the egress proxy). */
const packageRegistries: EgressRule[] = [
  { host: 'registry.npmjs.org' },
  { host: 'pypi.org' },
  { host: 'files.pythonhosted.org' },
];

/**
 * The example platform: codex and Claude Code pools under gVisor, each with
 * its own egress allowlist enforced by an egress proxy (the default backend):
 * the package registries listed here plus what the pool needs without listing
 * it, its tasks' git host (github.com). Its model provider (api.openai.com,
 * api.anthropic.com) only the model gateway reaches, with the key it holds for the
 * pool. HTTPS only, nothing else, and never a private
 * or link-local address. The codex pool runs each task as its own Job (mode
 * "job", the default); the claude pool keeps a warm worker that leases tasks
 * from the controller (mode "warm"). Credentials by reference to Secrets
 * created out of band, and two declared tasks. `npx paddock egress explain
 * codex` shows what a pool may reach.
 */
export const examplePlatform: PlatformDefinition = {
  namespace: 'paddock',
  egress: [
    { name: 'codex', rules: packageRegistries },
    { name: 'claude', rules: packageRegistries },
  ],
  credentials: [
    { secretName: 'openai-api', keys: ['OPENAI_API_KEY'], grants: { codex: {} } },
    { secretName: 'anthropic-api', keys: ['ANTHROPIC_API_KEY'], grants: { claude: {} } },
  ],
  pools: [
    { name: 'codex', harnesses: ['codex'], sandbox: { type: 'gvisor' }, egress: ['codex'] },
    { name: 'claude', harnesses: ['claude-code'], mode: 'warm', replicas: 1, sandbox: { type: 'gvisor' }, egress: ['claude'] },
  ],
  tasks: [
    {
      name: 'summarize-readme',
      pool: 'codex',
      prompt:
        'Read README.md and summarize what this project does in three sentences. ' +
        'End with a ```result block holding JSON: {"summary": "..."}.',
      sources: [{ name: 'hello-world', url: 'https://github.com/octocat/Hello-World.git', branch: 'master' }],
      timeoutMinutes: 15,
    },
    {
      name: 'review-spoon-knife',
      pool: 'claude',
      prompt: 'List the files in this repository and say what each is for. End with a ```result block holding JSON: {"files": [...]}.',
      sources: [{ name: 'spoon-knife', url: 'https://github.com/octocat/Spoon-Knife.git', branch: 'main' }],
      timeoutMinutes: 15,
    },
  ],
};
