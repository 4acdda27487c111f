/**
 * Structured logs: one JSON object per line ({ time, level, component, msg,
 * ...fields }), which log collectors (Loki, Cloud Logging, Elasticsearch)
 * parse without a pattern.
 */
export type LogLevel = 'info' | 'warn' | 'error';

export type JsonLog = (msg: string, fields?: Readonly<Record<string, unknown>>, level?: LogLevel) => void;

export function jsonLogger(component: string, write: (line: string) => void, base: Readonly<Record<string, unknown>> = {}, now: () => Date = () => new Date()): JsonLog {
  return (msg, fields = {}, level = 'info') => write(JSON.stringify({ time: now().toISOString(), level, component, ...base, msg, ...fields }) + '\n');
}
