/**
 * Run the agent: argv with no shell, stdin closed (or fed the prompt, then closed), an
 * explicit environment, its own process group and the task's timeout. Its stdout and
 * stderr are streamed, redacted and line-prefixed, to the runner's stdout and stderr,
 * and saved (redacted) as artifacts/agent.stdout.log and agent.stderr.log. The raw
 * stdout is kept in memory (up to a limit) for result extraction.
 */
import * as fs from 'fs';
import * as path from 'path';
import { GroupRunResult, runInProcessGroup } from './process-group';
import { LinePrefixer, Redactor, StreamRedactor } from './redaction';

export interface AgentRunOptions {
  readonly argv: readonly string[];
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
  readonly stdinText?: string;
  readonly timeoutMs: number;
  readonly killGraceMs: number;
  readonly signal?: AbortSignal;
  readonly redactor: Redactor;
  readonly artifactsDir: string;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  /** Prefix of each streamed log line. */
  readonly prefix: string;
  /** Raw stdout kept for result extraction. */
  readonly maxCaptureBytes: number;
}

export interface AgentRunResult extends GroupRunResult {
  /** The agent's raw stdout (up to maxCaptureBytes), for result extraction. */
  readonly stdout: string;
  readonly truncated: boolean;
}

export async function runAgent(opts: AgentRunOptions): Promise<AgentRunResult> {
  const captured: Buffer[] = [];
  let capturedBytes = 0;
  let truncated = false;
  const out = new Channel(opts.redactor, path.join(opts.artifactsDir, 'agent.stdout.log'), opts.prefix, opts.stdout);
  const err = new Channel(opts.redactor, path.join(opts.artifactsDir, 'agent.stderr.log'), opts.prefix, opts.stderr);
  try {
    const result = await runInProcessGroup({
      argv: opts.argv,
      cwd: opts.cwd,
      env: opts.env,
      stdinText: opts.stdinText,
      timeoutMs: opts.timeoutMs,
      killGraceMs: opts.killGraceMs,
      signal: opts.signal,
      onStdout: (chunk) => {
        if (capturedBytes + chunk.length <= opts.maxCaptureBytes) {
          captured.push(chunk);
          capturedBytes += chunk.length;
        } else {
          truncated = true;
        }
        out.push(chunk);
      },
      onStderr: (chunk) => err.push(chunk),
    });
    return { ...result, stdout: Buffer.concat(captured).toString('utf8'), truncated };
  } finally {
    out.end();
    err.end();
  }
}

/** One output stream of the agent: redact, save, prefix and forward. */
class Channel {
  private readonly redactor: StreamRedactor;
  private readonly lines: LinePrefixer;
  private readonly fd: number;

  constructor(redactor: Redactor, file: string, prefix: string, target: NodeJS.WritableStream) {
    this.redactor = new StreamRedactor(redactor);
    this.lines = new LinePrefixer(prefix, (line) => target.write(line));
    this.fd = fs.openSync(file, 'w', 0o644);
  }

  push(chunk: Buffer): void {
    this.emit(this.redactor.push(chunk));
  }

  end(): void {
    this.emit(this.redactor.end());
    this.lines.end();
    fs.closeSync(this.fd);
  }

  private emit(text: string): void {
    if (!text) return;
    fs.writeSync(this.fd, text);
    this.lines.push(text);
  }
}
