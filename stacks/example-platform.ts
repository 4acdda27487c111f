import type { PlatformDefinition } from './platform-definition';

/**
 * The example platform: codex and Claude Code pools under gVisor, egress
 * to the public internet on 443 only (private ranges and the metadata
 * endpoint stay blocked), credentials by reference to Secrets created out of
 * band, and two declared tasks.
 */
export const examplePlatform: PlatformDefinition = {
  namespace: 'paddock',
  egress: [
    {
      name: 'public-https',
      rules: [
        { cidr: '0.0.0.0/0', ports: [443] },
        { cidr: '::/0', ports: [443] },
      ],
    },
  ],
  credentials: [
    { secretName: 'openai-api', keys: ['OPENAI_API_KEY'], grants: { codex: {} } },
    { secretName: 'anthropic-api', keys: ['ANTHROPIC_API_KEY'], grants: { claude: {} } },
  ],
  pools: [
    { name: 'codex', harnesses: ['codex'], replicas: 2, sandbox: { type: 'gvisor' }, egress: ['public-https'] },
    { name: 'claude', harnesses: ['claude-code'], replicas: 1, sandbox: { type: 'gvisor' }, egress: ['public-https'] },
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
