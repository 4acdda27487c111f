/**
 * End-to-end: the real agent CLIs (test/agents, `npm ci --prefix test/agents`) complete one
 * tool-call round trip against the loopback mock model server. Nothing leaves 127.0.0.1.
 *
 * Each CLI: fresh workspace + fresh HOME, config written as a user would (see
 * mockInvocation), argv array without a shell, stdin /dev/null, explicit minimal env.
 * A missing CLI fails the suite with the install command instead of skipping it.
 * Set PADDOCK_E2E_VERBOSE=1 to print wall times.
 */
import * as fs from 'fs';
import * as path from 'path';
import { startMockModelServer, MockModelServer } from '../support/mock-model-server';
import {
  AgentCliName, AgentRunResult, agentCliStatus, makeAgentRunDirs, mockInvocation, runAgentCli,
} from '../support/agent-clis';

const CLI_TIMEOUT_MS = 90_000;
const timings: string[] = [];

/** Where each CLI leaves its final answer, as measured (see test/agents/README.md). */
const finalText: Record<AgentCliName, (r: AgentRunResult) => string> = {
  codex: (r) => r.stdout, // stdout = last agent message only; progress goes to stderr
  claude: (r) => JSON.parse(r.stdout).result, // --output-format json: one object, `.result`
  gemini: (r) => JSON.parse(r.stdout).response, // --output-format json: one object, `.response`
  opencode: (r) => r.stdout, // stdout = assistant text; tool log goes to stderr
  copilot: (r) => r.stdout, // --silent: only the agent response
};

function describeRun(r: AgentRunResult): string {
  return `exit=${r.code} signal=${r.signal} timedOut=${r.timedOut} ${r.durationMs}ms\n` +
    `--- stdout\n${r.stdout.slice(-3000)}\n--- stderr\n${r.stderr.slice(-3000)}`;
}

function roundTrip(name: AgentCliName): void {
  describe(name, () => {
    let mock: MockModelServer | undefined;
    afterEach(async () => {
      await mock?.close();
      mock = undefined;
    });

    test('runs the shell tool call and returns the ```result block', async () => {
      const status = agentCliStatus(name);
      if (!status.installed) throw new Error(status.problem);

      const proof = `paddock-${name}-proof`;
      const result = `{"status":"ok","cli":"${name}","file":"proof.txt"}`;
      mock = await startMockModelServer({
        shellCommand: `echo ${proof} > proof.txt`,
        finalText: `I wrote proof.txt.\n\n\`\`\`result\n${result}\n\`\`\`\n`,
      });
      const dirs = makeAgentRunDirs(`paddock-e2e-${name}-`);
      try {
        const inv = mockInvocation(name, {
          mockUrl: mock.url,
          dirs,
          prompt: 'Create proof.txt, then report the result.',
        });
        const run = await runAgentCli(inv, { cwd: dirs.workspace, timeoutMs: CLI_TIMEOUT_MS });
        timings.push(`${name}: ${run.durationMs} ms, ${mock.requests.length} model requests ` +
          `(${mock.requests.map((r) => r.kind).join(', ')})`);

        if (run.code !== 0) throw new Error(`${name} failed: ${describeRun(run)}`);
        const proofFile = path.join(dirs.workspace, 'proof.txt');
        expect(fs.existsSync(proofFile) ? fs.readFileSync(proofFile, 'utf8') : `<no proof.txt>\n${describeRun(run)}`)
          .toBe(`${proof}\n`);
        expect(finalText[name](run)).toContain(`\`\`\`result\n${result}\n\`\`\``);

        // The scripted conversation happened, and the CLI used no route the mock lacks.
        const kinds = mock.requests.map((r) => r.kind);
        expect(kinds.filter((k) => k === 'tool_call')).toHaveLength(1);
        expect(kinds).toContain('final');
        expect(mock.requests.filter((r) => r.kind === 'not_found').map((r) => `${r.method} ${r.url}`)).toEqual([]);
      } finally {
        dirs.cleanup();
      }
    }, CLI_TIMEOUT_MS + 30_000);
  });
}

describe('agent CLIs against the mock model server', () => {
  afterAll(() => {
    if (process.env.PADDOCK_E2E_VERBOSE) console.log(`agent CLI round trips:\n${timings.join('\n')}`);
  });

  roundTrip('codex');
  roundTrip('claude');
  roundTrip('gemini');
  roundTrip('opencode');
  roundTrip('copilot');
});

describe('mock model server', () => {
  let mock: MockModelServer;
  beforeEach(async () => {
    mock = await startMockModelServer({ shellCommand: 'true', finalText: 'FINAL' });
  });
  afterEach(() => mock.close());

  const post = (p: string, body: unknown) => fetch(`${mock.url}${p}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

  test('listens on loopback only', () => {
    expect(mock.url).toBe(`http://127.0.0.1:${mock.port}`);
  });

  test('decides the turn from the request content, not from a counter', async () => {
    const tools = [{ name: 'Bash', input_schema: {} }];
    const first = { model: 'm', messages: [{ role: 'user', content: 'go' }], tools };
    const after = {
      model: 'm',
      tools,
      messages: [...first.messages, { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: '' }] }],
    };
    // Out of order and repeated: each answer depends on its own request only.
    const a: any = await (await post('/v1/messages', after)).json();
    const b: any = await (await post('/v1/messages', first)).json();
    const c: any = await (await post('/v1/messages', { model: 'm', messages: first.messages })).json();
    const d: any = await (await post('/v1/messages', first)).json();
    expect(a.content[0]).toEqual({ type: 'text', text: 'FINAL' });
    expect(b.content[0]).toMatchObject({ type: 'tool_use', name: 'Bash', input: { command: 'true' } });
    expect(c.content[0]).toEqual({ type: 'text', text: 'Mock title' });
    expect(d.stop_reason).toBe('tool_use');
    expect(mock.requests.map((r) => r.kind)).toEqual(['final', 'tool_call', 'side', 'tool_call']);
  });

  test('streams Chat Completions tool calls as SSE ending in [DONE]', async () => {
    const res = await post('/v1/chat/completions', {
      model: 'm', stream: true, messages: [{ role: 'user', content: 'go' }],
      tools: [{ type: 'function', function: { name: 'bash', parameters: {} } }],
    });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const text = await res.text();
    expect(text).toContain('"finish_reason":"tool_calls"');
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
  });

  test('answers Gemini JSON side calls from their response schema', async () => {
    const res = await post('/v1beta/models/x:generateContent', {
      contents: [{ role: 'user', parts: [{ text: 'route' }] }],
      generationConfig: {
        responseMimeType: 'application/json',
        responseJsonSchema: {
          type: 'OBJECT',
          properties: { model_choice: { type: 'STRING', enum: ['flash', 'pro'] }, score: { type: 'INTEGER' } },
        },
      },
    });
    const body: any = await res.json();
    expect(JSON.parse(body.candidates[0].content.parts[0].text)).toEqual({ model_choice: 'flash', score: 1 });
  });

  test('records unknown routes and answers 404', async () => {
    const res = await fetch(`${mock.url}/v2/unknown?x=1`);
    expect(res.status).toBe(404);
    expect(mock.requests).toHaveLength(1);
    expect(mock.requests[0]).toMatchObject({ method: 'GET', url: '/v2/unknown?x=1', kind: 'not_found' });
  });

  test('onRequest can answer a request itself', async () => {
    await mock.close();
    mock = await startMockModelServer({
      shellCommand: 'true',
      finalText: 'FINAL',
      onRequest: (r) => (r.url.includes('boom') ? { status: 503, body: 'overloaded' } : undefined),
    });
    expect((await post('/v1/responses?boom', {})).status).toBe(503);
    expect((await post('/v1/responses', { input: [], tools: [] })).status).toBe(200);
    expect(mock.requests.map((r) => r.kind)).toEqual(['custom', 'side']);
  });
});
