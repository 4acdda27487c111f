/**
 * A thin fake of the GitHub and GitLab REST APIs (only the calls the publisher makes),
 * on 127.0.0.1, recording every request so tests can check them exactly. Not a forge.
 */
import * as http from 'http';
import * as https from 'https';
import { AddressInfo } from 'net';
import type { TestCertificate } from './https-origin';

export interface ForgeRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body?: unknown;
}

export interface FakeForge {
  readonly url: string;
  readonly requests: ForgeRequest[];
  close(): Promise<void>;
}

/** With `tls`, the API is served over HTTPS with that certificate, as `https://localhost:PORT`. */
export async function startFakeForge(kind: 'github' | 'gitlab', tls?: TestCertificate): Promise<FakeForge> {
  const requests: ForgeRequest[] = [];
  const handler: http.RequestListener = (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const body = text ? JSON.parse(text) : undefined;
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, ...(body !== undefined ? { body } : {}) });
      const send = (status: number, value: unknown) => {
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(value));
      };
      const url = req.url ?? '';
      if (kind === 'github') {
        if (req.method === 'POST' && /^\/repos\/[^/]+\/[^/]+\/pulls$/.test(url)) return send(201, { number: 7, html_url: `https://github.example/${url.split('/')[2]}/${url.split('/')[3]}/pull/7` });
        if (req.method === 'GET' && /^\/repos\/[^/]+\/[^/]+$/.test(url)) return send(200, { default_branch: 'main' });
      } else {
        if (req.method === 'POST' && /^\/api\/v4\/projects\/[^/]+\/merge_requests$/.test(url)) return send(201, { iid: 3, web_url: 'https://gitlab.example/acme/work/-/merge_requests/3' });
        if (req.method === 'GET' && /^\/api\/v4\/projects\/[^/]+$/.test(url)) return send(200, { id: 42, default_branch: 'main' });
      }
      send(404, { message: 'Not Found' });
    });
  };
  const server = tls ? https.createServer({ cert: tls.certPem, key: tls.keyPem }, handler) : http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: tls ? `https://localhost:${port}` : `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}
