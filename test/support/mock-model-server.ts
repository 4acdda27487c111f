/**
 * A loopback mock model server that speaks the wire protocols of the agent CLIs
 * (Codex, Claude Code, Gemini CLI, opencode, Copilot BYOK) well enough for one scripted round trip:
 *
 *   turn 1 (request offers tools, no tool result after the last user prompt) -> ONE shell tool call running `shellCommand`
 *   turn 2 (a tool result after the last user prompt)      -> final assistant text `finalText`
 *   side requests (titles, routing, next-speaker checks)  -> plain text / JSON, no tool call
 *
 * The turn is decided from each request's content, never from a global counter, so
 * retries, parallel side calls and title requests cannot derail the script.
 *
 * Routes (base URL = `url`):
 *   POST /v1/responses                       OpenAI Responses API, SSE       (codex)
 *   POST /v1/chat/completions                OpenAI Chat Completions, SSE     (opencode, copilot)
 *   POST /v1/messages[?beta=true]            Anthropic Messages, SSE or JSON  (claude)
 *   POST /v1/messages/count_tokens           Anthropic token count            (claude)
 *   HEAD|GET / and /api/hello                connectivity probes              (claude)
 *   POST /v1beta/models/M:streamGenerateContent?alt=sse   Gemini, SSE         (gemini)
 *   POST /v1beta/models/M:generateContent    Gemini, JSON (routing / side calls)
 *   POST /v1beta/models/M:countTokens        Gemini token count
 *   anything else                            404, still recorded
 *
 * Test-only code: binds 127.0.0.1, never calls out.
 */
import * as http from 'http';
import { AddressInfo } from 'net';

export type MockProtocol = 'openai-responses' | 'openai-chat' | 'anthropic' | 'gemini' | 'probe' | 'unknown';

/** What the server decided to answer. */
export type MockReplyKind = 'tool_call' | 'final' | 'side' | 'count_tokens' | 'probe' | 'not_found' | 'custom';

export interface RecordedRequest {
  readonly method: string;
  /** Path and query, e.g. `/v1/messages?beta=true`. */
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  /** Raw request body. */
  readonly rawBody: string;
  /** Parsed JSON body, or undefined when the body is empty or not JSON. */
  readonly body: any;
  readonly protocol: MockProtocol;
  /** Set once the reply is chosen. */
  kind?: MockReplyKind;
  /** Names of the tools the request offered (empty for side requests). */
  toolNames: string[];
}

/** Returned by `onRequest` to answer a request yourself (fault injection). */
export interface MockOverride {
  readonly status: number;
  readonly headers?: Record<string, string>;
  readonly body?: string;
}

export interface MockModelServerOptions {
  /** Shell command the first model turn asks the agent to run, e.g. `echo hi > proof.txt`. */
  readonly shellCommand: string;
  /** Final assistant message after the tool result came back (e.g. containing a ```result block). */
  readonly finalText: string;
  /**
   * Text for side requests that offer no tools (titles, summaries).
   * @default 'Mock title'
   */
  readonly sideText?: string;
  /**
   * Called for every request after it is recorded. Return a `MockOverride` to answer it
   * yourself (e.g. a 500 to test retries); return nothing to let the script answer.
   */
  readonly onRequest?: (req: RecordedRequest) => MockOverride | void;
}

export interface MockModelServer {
  /** `http://127.0.0.1:PORT` (no trailing slash, no /v1). */
  readonly url: string;
  readonly port: number;
  /** Every request received, in arrival order. */
  readonly requests: RecordedRequest[];
  close(): Promise<void>;
}

/**
 * Whether the request's history ends in a tool result, i.e. one comes after the last user
 * prompt: a resumed conversation carries the earlier turn's tool result before its new prompt,
 * which still asks for a tool call.
 */
function toolResultAfterPrompt<T>(items: readonly T[], isToolResult: (item: T) => boolean, isPrompt: (item: T) => boolean): boolean {
  let lastTool = -1;
  let lastPrompt = -1;
  items.forEach((item, i) => {
    if (isToolResult(item)) lastTool = i;
    else if (isPrompt(item)) lastPrompt = i;
  });
  return lastTool > lastPrompt;
}

/** Decides the scripted reply from the request content alone. */
function decide(offersTools: boolean, carriesToolResult: boolean): 'tool_call' | 'final' | 'side' {
  if (carriesToolResult) return 'final';
  return offersTools ? 'tool_call' : 'side';
}

export async function startMockModelServer(opts: MockModelServerOptions): Promise<MockModelServer> {
  const requests: RecordedRequest[] = [];
  const sideText = opts.sideText ?? 'Mock title';
  let ids = 0;
  // Unique across servers: a resumed conversation holds the ids an earlier server gave (a CLI drops a tool call whose id repeats).
  const serverTag = Math.random().toString(36).slice(2, 8);
  const nextId = (prefix: string) => `${prefix}_mock${serverTag}${++ids}`;

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      let body: any;
      try {
        body = rawBody ? JSON.parse(rawBody) : undefined;
      } catch {
        body = undefined;
      }
      const url = req.url ?? '/';
      const path = url.split('?')[0];
      const rec: RecordedRequest = {
        method: req.method ?? 'GET',
        url,
        headers: req.headers,
        rawBody,
        body,
        protocol: protocolOf(req.method ?? 'GET', path),
        toolNames: [],
      };
      requests.push(rec);
      try {
        const override = opts.onRequest?.(rec);
        if (override) {
          rec.kind = 'custom';
          res.writeHead(override.status, override.headers ?? { 'content-type': 'application/json' });
          res.end(override.body ?? '');
          return;
        }
        route(rec, path, res);
      } catch (err) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: `mock-model-server: ${(err as Error).message}` } }));
      }
    });
  });

  function route(rec: RecordedRequest, path: string, res: http.ServerResponse): void {
    const b = rec.body ?? {};
    if (rec.protocol === 'probe') {
      // Claude Code probes the base URL (`HEAD /api/hello` unless
      // CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1; older builds `HEAD /`). Any 2xx will do.
      rec.kind = 'probe';
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(rec.method === 'HEAD' ? undefined : 'ok');
      return;
    }
    if (rec.method === 'POST' && rec.protocol === 'openai-responses') return openaiResponses(rec, b, res);
    if (rec.method === 'POST' && rec.protocol === 'openai-chat') return openaiChat(rec, b, res);
    if (rec.method === 'POST' && rec.protocol === 'anthropic') {
      if (path.endsWith('/count_tokens')) {
        rec.kind = 'count_tokens';
        return json(res, { input_tokens: Math.ceil(rec.rawBody.length / 4) });
      }
      return anthropic(rec, b, res);
    }
    if (rec.method === 'POST' && rec.protocol === 'gemini') return gemini(rec, path, b, res);
    rec.kind = 'not_found';
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { message: `mock-model-server: no route for ${rec.method} ${rec.url}` } }));
  }

  // ---------------------------------------------------------------- OpenAI Responses (codex)
  // Request: { input: [...items], tools: [{type:'function', name}], stream: true }.
  // The follow-up carries an input item {type:'function_call_output', call_id, output}.
  // Codex only needs `response.output_item.done` per output item, then `response.completed`
  // (with an id and usage); deltas are optional. Codex 0.169 offers `exec_command` {cmd};
  // older builds offered `shell` {command: [argv]}, answered too in case the list changes.
  function openaiResponses(rec: RecordedRequest, b: any, res: http.ServerResponse): void {
    const tools: any[] = Array.isArray(b.tools) ? b.tools : [];
    rec.toolNames = tools.map((t) => t.name ?? t.type).filter(Boolean);
    const input: any[] = Array.isArray(b.input) ? b.input : [];
    const carries = toolResultAfterPrompt(input, (i) => i && (i.type === 'function_call_output' || i.type === 'custom_tool_call_output'), (i) => i?.role === 'user');
    const kind = decide(tools.length > 0, carries);
    rec.kind = kind;
    const respId = nextId('resp');
    let item: any;
    if (kind === 'tool_call') {
      // Argument shape per shell tool name, in order of preference.
      const shapes: [string, unknown][] = [
        ['exec_command', { cmd: opts.shellCommand }],
        ['shell_command', { command: opts.shellCommand }],
        ['shell', { command: ['bash', '-lc', opts.shellCommand] }],
      ];
      const [name, args] = shapes.find(([n]) => rec.toolNames.includes(n)) ?? shapes[0];
      item = { type: 'function_call', id: nextId('fc'), call_id: nextId('call'), name, arguments: JSON.stringify(args) };
    } else {
      const text = kind === 'final' ? opts.finalText : sideText;
      item = { type: 'message', id: nextId('msg'), role: 'assistant', content: [{ type: 'output_text', text, annotations: [] }] };
    }
    const usage = { input_tokens: 10, input_tokens_details: { cached_tokens: 0 }, output_tokens: 10, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 20 };
    if (b.stream === false) {
      return json(res, { id: respId, object: 'response', status: 'completed', output: [item], usage });
    }
    sse(res, [
      { data: { type: 'response.created', response: { id: respId } } },
      { data: { type: 'response.output_item.done', output_index: 0, item } },
      { data: { type: 'response.completed', response: { id: respId, status: 'completed', output: [item], usage } } },
    ], true);
  }

  // ------------------------------------------------ OpenAI Chat Completions (opencode, copilot)
  // Request: { messages: [...], tools: [{type:'function', function:{name}}], stream: true }.
  // The follow-up carries a {role:'tool', tool_call_id} message. Stream = chat.completion.chunk
  // objects, tool call arguments as one string, then `finish_reason`, a usage chunk, `[DONE]`.
  // opencode's `bash` tool requires `description` besides `command` (copilot's accepts it).
  function openaiChat(rec: RecordedRequest, b: any, res: http.ServerResponse): void {
    const tools: any[] = Array.isArray(b.tools) ? b.tools : [];
    rec.toolNames = tools.map((t) => t.function?.name ?? t.name).filter(Boolean);
    const messages: any[] = Array.isArray(b.messages) ? b.messages : [];
    const kind = decide(tools.length > 0, toolResultAfterPrompt(messages, (m) => m?.role === 'tool', (m) => m?.role === 'user'));
    rec.kind = kind;
    const id = nextId('chatcmpl');
    const model = b.model ?? 'mock-model';
    const chunk = (delta: any, finish: string | null, extra: any = {}) => ({
      id, object: 'chat.completion.chunk', created: 0, model,
      choices: [{ index: 0, delta, finish_reason: finish }], ...extra,
    });
    const usage = { prompt_tokens: 10, completion_tokens: 10, total_tokens: 20 };
    const name = rec.toolNames.find((n) => n === 'bash') ?? rec.toolNames.find((n) => /shell|bash/i.test(n)) ?? 'bash';
    const call = { id: nextId('call'), type: 'function', function: { name, arguments: JSON.stringify({ command: opts.shellCommand, description: 'Run the requested command' }) } };
    const text = kind === 'final' ? opts.finalText : sideText;
    if (b.stream !== true) {
      const message = kind === 'tool_call'
        ? { role: 'assistant', content: null, tool_calls: [call] }
        : { role: 'assistant', content: text };
      return json(res, { id, object: 'chat.completion', created: 0, model, choices: [{ index: 0, message, finish_reason: kind === 'tool_call' ? 'tool_calls' : 'stop' }], usage });
    }
    const events = kind === 'tool_call'
      ? [
        chunk({ role: 'assistant', content: null, tool_calls: [{ index: 0, ...call }] }, null),
        chunk({}, 'tool_calls'),
      ]
      : [chunk({ role: 'assistant', content: text }, null), chunk({}, 'stop')];
    events.push({ id, object: 'chat.completion.chunk', created: 0, model, choices: [], usage } as any);
    sse(res, [...events.map((data) => ({ data })), { data: '[DONE]' }], false);
  }

  // ---------------------------------------------------------------- Anthropic Messages (claude)
  // Request: { messages: [...], tools: [{name}], stream }. The follow-up carries a user
  // content block {type:'tool_result'}. SSE needs `event:` lines (message_start,
  // content_block_start/delta/stop, message_delta, message_stop). Tool input streams as
  // `input_json_delta`. Claude's `Bash` tool takes {command, description}. Title and other
  // side requests carry no tools (some are non-streaming): answered with plain text.
  function anthropic(rec: RecordedRequest, b: any, res: http.ServerResponse): void {
    const tools: any[] = Array.isArray(b.tools) ? b.tools : [];
    rec.toolNames = tools.map((t) => t.name).filter(Boolean);
    const messages: any[] = Array.isArray(b.messages) ? b.messages : [];
    const carries = toolResultAfterPrompt(messages, (m) => Array.isArray(m?.content) && m.content.some((c: any) => c?.type === 'tool_result'), (m) => m?.role === 'user');
    const kind = decide(tools.length > 0, carries);
    rec.kind = kind;
    const id = nextId('msg');
    const model = b.model ?? 'mock-model';
    const name = rec.toolNames.find((n) => n === 'Bash') ?? rec.toolNames.find((n) => /bash|shell/i.test(n)) ?? 'Bash';
    const block = kind === 'tool_call'
      ? { type: 'tool_use', id: nextId('toolu'), name, input: { command: opts.shellCommand, description: 'Run the requested command' } }
      : { type: 'text', text: kind === 'final' ? opts.finalText : sideText };
    const stop = kind === 'tool_call' ? 'tool_use' : 'end_turn';
    const usage = { input_tokens: 10, output_tokens: 10, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
    if (b.stream !== true) {
      return json(res, { id, type: 'message', role: 'assistant', model, content: [block], stop_reason: stop, stop_sequence: null, usage });
    }
    const start = block.type === 'tool_use' ? { ...block, input: {} } : { type: 'text', text: '' };
    const delta = block.type === 'tool_use'
      ? { type: 'input_json_delta', partial_json: JSON.stringify((block as any).input) }
      : { type: 'text_delta', text: (block as any).text };
    sse(res, [
      { event: 'message_start', data: { type: 'message_start', message: { id, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage } } },
      { event: 'content_block_start', data: { type: 'content_block_start', index: 0, content_block: start } },
      { event: 'content_block_delta', data: { type: 'content_block_delta', index: 0, delta } },
      { event: 'content_block_stop', data: { type: 'content_block_stop', index: 0 } },
      { event: 'message_delta', data: { type: 'message_delta', delta: { stop_reason: stop, stop_sequence: null }, usage: { output_tokens: 10 } } },
      { event: 'message_stop', data: { type: 'message_stop' } },
    ], false);
  }

  // ---------------------------------------------------------------------- Gemini (gemini-cli)
  // Path: /v1beta/models/MODEL:ACTION. The main loop uses `:streamGenerateContent?alt=sse`
  // with tools: [{functionDeclarations: [{name}]}]; the follow-up carries a part
  // {functionResponse}. Side calls (model routing, next-speaker check, loop detection) use
  // `:generateContent` with a JSON response schema; they get a JSON object built from it.
  function gemini(rec: RecordedRequest, path: string, b: any, res: http.ServerResponse): void {
    const action = path.slice(path.lastIndexOf(':') + 1);
    if (action === 'countTokens') {
      rec.kind = 'count_tokens';
      return json(res, { totalTokens: Math.ceil(rec.rawBody.length / 4) });
    }
    const decls: any[] = (Array.isArray(b.tools) ? b.tools : []).flatMap((t: any) => t.functionDeclarations ?? []);
    rec.toolNames = decls.map((d) => d.name).filter(Boolean);
    const contents: any[] = Array.isArray(b.contents) ? b.contents : [];
    const carries = toolResultAfterPrompt(contents, (c) => Array.isArray(c?.parts) && c.parts.some((p: any) => p?.functionResponse), (c) => c?.role === 'user');
    const kind = decide(decls.length > 0, carries);
    rec.kind = kind;
    const name = rec.toolNames.find((n) => n === 'run_shell_command') ?? rec.toolNames.find((n) => /shell|bash/i.test(n)) ?? 'run_shell_command';
    let parts: any[];
    const schema = b.generationConfig?.responseJsonSchema ?? b.generationConfig?.responseSchema;
    if (kind === 'tool_call') {
      parts = [{ functionCall: { name, args: { command: opts.shellCommand, description: 'Run the requested command' } } }];
    } else if (kind === 'side' && (schema || b.generationConfig?.responseMimeType === 'application/json')) {
      parts = [{ text: JSON.stringify(fromSchema(schema ?? {})) }];
    } else {
      parts = [{ text: kind === 'final' ? opts.finalText : sideText }];
    }
    const payload = {
      candidates: [{ content: { role: 'model', parts }, finishReason: 'STOP', index: 0 }],
      usageMetadata: { promptTokenCount: 10, candidatesTokenCount: 10, totalTokenCount: 20 },
      modelVersion: path.split('/').pop()?.split(':')[0] ?? 'mock-model',
    };
    if (action === 'streamGenerateContent') return sse(res, [{ data: payload }], false);
    return json(res, payload);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

function protocolOf(method: string, path: string): MockProtocol {
  if ((method === 'HEAD' || method === 'GET') && (path === '/' || path === '/api/hello')) return 'probe';
  if (path.endsWith('/responses')) return 'openai-responses';
  if (path.endsWith('/chat/completions')) return 'openai-chat';
  if (/\/messages(\/count_tokens)?$/.test(path)) return 'anthropic';
  if (/:(streamGenerateContent|generateContent|countTokens)$/.test(path)) return 'gemini';
  return 'unknown';
}

function json(res: http.ServerResponse, value: unknown): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

/**
 * Writes server-sent events. `typedEvents` adds an `event:` line from `data.type`
 * (the Responses API clients accept either form; Anthropic passes `event` explicitly).
 */
function sse(res: http.ServerResponse, events: { event?: string; data: unknown }[], typedEvents: boolean): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  for (const e of events) {
    const name = e.event ?? (typedEvents && typeof e.data === 'object' ? (e.data as any).type : undefined);
    const data = typeof e.data === 'string' ? e.data : JSON.stringify(e.data);
    res.write(`${name ? `event: ${name}\n` : ''}data: ${data}\n\n`);
  }
  res.end();
}

/** A minimal value satisfying a JSON schema: first enum value, required properties filled. */
function fromSchema(schema: any): unknown {
  if (!schema || typeof schema !== 'object') return null;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  const type = String(Array.isArray(schema.type) ? schema.type[0] : schema.type ?? 'object').toLowerCase();
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries<any>(schema.properties ?? {})) out[k] = fromSchema(v);
      return out;
    }
    case 'array': return [];
    case 'string': return 'mock';
    // e.g. gemini's routing classifier wants complexity_score >= 1 (1 = simple -> flash model).
    case 'number': case 'integer': return typeof schema.minimum === 'number' ? schema.minimum : 1;
    case 'boolean': return false;
    default: return null;
  }
}
