/**
 * Where the hostile agent (test/runner/fixtures/hostile-agent.js snoop) posts what it
 * found: a loopback HTTP server that keeps every body it receives.
 */
import * as http from 'http';
import { AddressInfo } from 'net';

export interface LootServer {
  readonly url: string;
  /** Everything posted so far. */
  text(): string;
  close(): Promise<void>;
}

export async function startLootServer(): Promise<LootServer> {
  let loot = '';
  const server = http.createServer((req, res) => {
    req.on('data', (d) => (loot += d));
    req.on('end', () => res.end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/loot`,
    text: () => loot,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
