/**
 * Run the agent: argv with no shell, stdin closed (or fed the prompt, then closed), an
 * explicit environment, its own process group and the task's timeout. Its stdout and
 * stderr are streamed, redacted and line-prefixed, to the runner's stdout and stderr,
 * and saved (redacted) as artifacts/agent.stdout.log and agent.stderr.log, each cut to
 * its first and last maxLogBytes/2 so the artifacts fit their emptyDir. The last
 * maxCaptureBytes of the raw stdout are kept in memory for result extraction (the
 * final result block comes at the end).
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
  /** Raw stdout kept for result extraction: the last this many bytes. */
  readonly maxCaptureBytes: number;
  /** Each log file keeps its first and last half of this many bytes. */
  readonly maxLogBytes: number;
  /** A notice to look for in the agent's output (stdout or stderr, redacted), e.g. the model gateway's final answer. */
  readonly watch?: RegExp;
}

export interface AgentRunResult extends GroupRunResult {
  /** The agent's raw stdout (its last maxCaptureBytes, from a line start), for result extraction. */
  readonly stdout: string;
  readonly truncated: boolean;
  /** Bytes of stdout before the kept tail. */
  readonly droppedBytes: number;
  /** Bytes cut out of the middle of agent.stdout.log and agent.stderr.log. */
  readonly logDroppedBytes: { readonly stdout: number; readonly stderr: number };
  /** The last match of `watch`, if the output held one. */
  readonly watched?: RegExpExecArray;
}

export async function runAgent(opts: AgentRunOptions): Promise<AgentRunResult> {
  const captured = new TailBuffer(opts.maxCaptureBytes);
  const out = new Channel(opts.redactor, path.join(opts.artifactsDir, 'agent.stdout.log'), opts.prefix, opts.stdout, opts.maxLogBytes, opts.watch);
  const err = new Channel(opts.redactor, path.join(opts.artifactsDir, 'agent.stderr.log'), opts.prefix, opts.stderr, opts.maxLogBytes, opts.watch);
  let result: GroupRunResult;
  try {
    result = await runInProcessGroup({
      argv: opts.argv,
      cwd: opts.cwd,
      env: opts.env,
      stdinText: opts.stdinText,
      timeoutMs: opts.timeoutMs,
      killGraceMs: opts.killGraceMs,
      signal: opts.signal,
      // A worker killed outright must not leave its agent running beside the retried attempt.
      supervise: true,
      onStdout: (chunk) => {
        captured.push(chunk);
        out.push(chunk);
      },
      onStderr: (chunk) => err.push(chunk),
    });
  } finally {
    out.end();
    err.end();
  }
  const tail = captured.text();
  const watched = [out.watched, err.watched].filter((m): m is { match: RegExpExecArray; at: number } => !!m).sort((a, b) => a.at - b.at).pop()?.match;
  return {
    ...result,
    stdout: tail.text,
    truncated: tail.dropped > 0,
    droppedBytes: tail.dropped,
    logDroppedBytes: { stdout: out.dropped, stderr: err.dropped },
    ...(watched ? { watched } : {}),
  };
}

/** The last `max` bytes of a stream; memory stays within max plus one chunk. */
export class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  private droppedBytes = 0;

  constructor(private readonly max: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.chunks.length > 1 && this.size - this.chunks[0].length >= this.max) {
      this.size -= this.chunks[0].length;
      this.droppedBytes += this.chunks.shift()!.length;
    }
  }

  /** The kept bytes as text; when something was dropped, from the first line start (no split line or character). */
  text(): { text: string; dropped: number } {
    let buf = Buffer.concat(this.chunks);
    if (buf.length > this.max) buf = buf.subarray(buf.length - this.max);
    let dropped = this.droppedBytes + (this.size - buf.length);
    if (dropped > 0) {
      const nl = buf.indexOf(0x0a);
      const from = nl < 0 ? buf.length : nl + 1;
      dropped += from;
      buf = buf.subarray(from);
    }
    return { text: buf.toString('utf8'), dropped };
  }
}

/** How much of the end of a stream `watch` looks at: a notice up to this long is found when split across chunks. */
const WATCH_WINDOW = 2048;

/** One output stream of the agent: redact, save (head and tail within the limit), prefix and forward. */
class Channel {
  private readonly redactor: StreamRedactor;
  private readonly lines: LinePrefixer;
  private readonly fd: number;
  private readonly headMax: number;
  private written = 0;
  private readonly tail: TailBuffer;
  /** The end of the output so far, for `watch` (a notice may come in two chunks). */
  private window = '';

  constructor(
    redactor: Redactor,
    file: string,
    prefix: string,
    target: NodeJS.WritableStream,
    maxLogBytes: number,
    private readonly watch?: RegExp,
  ) {
    this.redactor = new StreamRedactor(redactor);
    this.lines = new LinePrefixer(prefix, (line) => target.write(line));
    this.fd = fs.openSync(file, 'w', 0o644);
    this.headMax = Math.floor(maxLogBytes / 2);
    this.tail = new TailBuffer(maxLogBytes - this.headMax);
  }

  /** Bytes of the log left out of the file. */
  public dropped = 0;
  /** The last match of `watch`, and when it was seen. */
  public watched?: { match: RegExpExecArray; at: number };

  push(chunk: Buffer): void {
    this.emit(this.redactor.push(chunk));
  }

  end(): void {
    this.emit(this.redactor.end());
    this.lines.end();
    const tail = this.tail.text();
    if (tail.dropped > 0) {
      this.dropped = tail.dropped;
      fs.writeSync(this.fd, `\n[paddock] ${tail.dropped} bytes of agent output left out of this log (the log keeps its first and last ${this.headMax} bytes)\n`);
    }
    if (tail.text) fs.writeSync(this.fd, tail.text);
    fs.closeSync(this.fd);
  }

  private emit(text: string): void {
    if (!text) return;
    this.lines.push(text);
    if (this.watch) {
      this.window = (this.window + text).slice(-WATCH_WINDOW);
      const match = this.watch.exec(this.window);
      if (match) this.watched = { match, at: performance.now() };
    }
    let buf = Buffer.from(text);
    if (this.written < this.headMax) {
      const head = buf.subarray(0, this.headMax - this.written);
      fs.writeSync(this.fd, head);
      this.written += head.length;
      buf = buf.subarray(head.length);
    }
    if (buf.length) this.tail.push(buf);
  }
}
