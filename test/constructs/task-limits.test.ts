/** AgentTask refuses what no process can take: a {prompt} over the argv limit, NUL bytes in env. */
import { AgentPool, AgentTask, Harness } from '../../constructs';
import { newPlatform, synth } from '../support/synth';

const BIG = 'x'.repeat(200 * 1024);

function taskWith(harness: Harness, props: Partial<ConstructorParameters<typeof AgentTask>[2]>) {
  const { chart, platform } = newPlatform();
  const pool = new AgentPool(platform, 'p', { harnesses: [harness] });
  new AgentTask(platform, 'big', { pool, prompt: 'hi', ...props });
  return synth(chart);
}

describe('AgentTask limits', () => {
  test('a 200 KB prompt for a harness passing it as {prompt} fails at construction, naming the field and the way out', () => {
    expect(() => taskWith(Harness.codex(), { prompt: BIG })).toThrow(
      /AgentTask "big": prompt: is 204800 bytes, over the 102400 bytes a prompt may have as an argv element \(\{prompt\}\); shorten it, or pass it with promptVia "stdin" or "file" \(an option of every preset\), or use a harness whose command takes \{prompt_file\}/,
    );
  });

  test('the same prompt through {prompt_file} or stdin synthesizes', () => {
    for (const command of [['agent', '--prompt-file', '{prompt_file}'], ['agent']]) {
      const harness = new Harness({ name: 'filed', capability: 'harness.filed', command, image: 'example.invalid/agent:1' });
      const objects = taskWith(harness, { prompt: BIG });
      expect(JSON.parse((objects.find((o) => o.metadata?.name === 'task-big')!.data as Record<string, string>)['task.json']).prompt).toHaveLength(BIG.length);
    }
  });

  test('a NUL byte in an env value fails at construction', () => {
    expect(() => taskWith(Harness.codex(), { env: { MODE: 'a\u0000b' } })).toThrow(/AgentTask "big": env\.MODE: contains a NUL byte, which no environment variable can hold; remove it/);
  });
});
