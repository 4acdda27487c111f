/**
 * A real git server for tests and the runner benchmark: `git http-backend` (smart HTTP, protocol v2) behind a
 * small Node HTTP server on 127.0.0.1. Repositories under `private/` require HTTP basic
 * auth. Every request is recorded (with its Authorization header decoded) so tests can
 * prove which credentials were sent.
 *
 * Test and bench code only (lives here so `npm run bench` gets it compiled; the tests
 * import it through test/support/git-server.ts): binds 127.0.0.1, never calls out.
 */
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as https from 'https';
import { AddressInfo } from 'net';
import * as os from 'os';
import * as path from 'path';

export interface GitServerOptions {
  /** Folder holding bare repositories (`<name>.git`). */
  readonly root: string;
  /** Basic-auth credentials required for every repository under `private/`. */
  readonly auth?: { readonly username: string; readonly password: string };
  /** Serve HTTPS with a fresh self-signed certificate for 127.0.0.1 (see `caFile`). */
  readonly tls?: boolean;
  /** Hold every request under `slow/` this long before answering (a stalled server). */
  readonly slowMs?: number;
  /** Answer a request with a 302 to the URL this returns (path and query appended), e.g. a redirect to another host. */
  readonly redirectTo?: (pathname: string) => string | undefined;
  /** Accept pushes (git receive-pack, `http.receivepack`) from this user only; others get 403. @default - no pushes */
  readonly push?: { readonly username: string; readonly password: string };
}

export interface GitRequest {
  readonly method: string;
  readonly url: string;
  /** `user:password` decoded from a Basic Authorization header, if any. */
  readonly basicAuth?: string;
  readonly status: number;
}

export interface GitServer {
  /** `http://127.0.0.1:PORT` (https:// with `tls`) */
  readonly url: string;
  /** With `tls`: the PEM certificate to trust (e.g. as GIT_SSL_CAINFO). */
  readonly caFile?: string;
  /** host:port */
  readonly host: string;
  readonly requests: GitRequest[];
  /** URL of a repository: `repoUrl('demo')` -> http://127.0.0.1:PORT/demo.git */
  repoUrl(name: string): string;
  close(): Promise<void>;
}

export async function startGitServer(opts: GitServerOptions): Promise<GitServer> {
  const requests: GitRequest[] = [];
  const cert = opts.tls ? makeLoopbackCert() : undefined;
  const handler: http.RequestListener = (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const basicAuth = decodeBasic(req.headers.authorization);
    const record = (status: number): void => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', ...(basicAuth !== undefined ? { basicAuth } : {}), status });
    };
    const target = opts.redirectTo?.(url.pathname);
    if (target !== undefined) {
      record(302);
      res.writeHead(302, { Location: `${target}${url.pathname}${url.search}` });
      res.end();
      return;
    }
    if (url.pathname.startsWith('/private/') && opts.auth) {
      if (basicAuth !== `${opts.auth.username}:${opts.auth.password}`) {
        record(401);
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="paddock-test"', 'Content-Type': 'text/plain' });
        res.end('authentication required\n');
        return;
      }
    }
    const receivePack = url.searchParams.get('service') === 'git-receive-pack' || url.pathname.endsWith('/git-receive-pack');
    if (receivePack) {
      const push = opts.push;
      if (push && basicAuth === undefined) {
        record(401);
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="paddock-test-push"', 'Content-Type': 'text/plain' });
        res.end('authentication required to push\n');
        return;
      }
      if (!push || basicAuth !== `${push.username}:${push.password}`) {
        record(403);
        res.writeHead(403, { 'Content-Type': 'text/plain' });
        res.end('push denied\n');
        return;
      }
    }
    if (url.pathname.startsWith('/slow/') && opts.slowMs && !(req as { delayed?: boolean }).delayed) {
      (req as { delayed?: boolean }).delayed = true;
      const timer = setTimeout(() => handler(req, res), opts.slowMs);
      res.on('close', () => clearTimeout(timer));
      return;
    }
    const cgi = spawn('git', ['http-backend'], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        GIT_PROJECT_ROOT: opts.root,
        GIT_HTTP_EXPORT_ALL: '1',
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_CONFIG_GLOBAL: '/dev/null',
        // Pushes only past the check above (http-backend would allow any REMOTE_USER).
        GIT_CONFIG_COUNT: '1',
        GIT_CONFIG_KEY_0: 'http.receivepack',
        GIT_CONFIG_VALUE_0: receivePack ? 'true' : 'false',
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        REQUEST_METHOD: req.method ?? 'GET',
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
        REMOTE_USER: basicAuth?.split(':')[0] ?? '',
        ...(req.headers['content-encoding'] ? { HTTP_CONTENT_ENCODING: String(req.headers['content-encoding']) } : {}),
        ...(req.headers['git-protocol'] ? { GIT_PROTOCOL: String(req.headers['git-protocol']) } : {}),
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    req.pipe(cgi.stdin);
    cgi.stdin.on('error', () => undefined);
    let head = Buffer.alloc(0);
    let headersDone = false;
    cgi.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const sep = findHeaderEnd(head);
      if (!sep) return;
      headersDone = true;
      let status = 200;
      for (const line of head.subarray(0, sep.index).toString('latin1').split(/\r?\n/)) {
        const colon = line.indexOf(':');
        if (colon <= 0) continue;
        const name = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (name.toLowerCase() === 'status') status = parseInt(value, 10) || 200;
        else res.setHeader(name, value);
      }
      record(status);
      res.writeHead(status);
      res.write(head.subarray(sep.index + sep.length));
    });
    cgi.stdout.on('end', () => {
      if (!headersDone) {
        record(500);
        res.writeHead(500);
      }
      res.end();
    });
    cgi.on('error', () => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  };
  const server = cert ? https.createServer({ cert: cert.certPem, key: cert.keyPem }, handler) : http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const host = `127.0.0.1:${port}`;
  const scheme = cert ? 'https' : 'http';
  return {
    url: `${scheme}://${host}`,
    host,
    requests,
    ...(cert ? { caFile: cert.certFile } : {}),
    repoUrl: (name) => `${scheme}://${host}/${name}.git`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          if (cert) fs.rmSync(path.dirname(cert.certFile), { recursive: true, force: true });
          resolve();
        });
      }),
  };
}

/** A self-signed certificate for IP 127.0.0.1 (and localhost), valid one day. */
function makeLoopbackCert(): { certPem: string; keyPem: string; certFile: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-git-tls-'));
  const keyFile = path.join(dir, 'key.pem');
  const certFile = path.join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=paddock test git',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', keyFile, '-out', certFile],
    { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 },
  );
  return { certPem: fs.readFileSync(certFile, 'utf8'), keyPem: fs.readFileSync(keyFile, 'utf8'), certFile };
}

function findHeaderEnd(buf: Buffer): { index: number; length: number } | undefined {
  const crlf = buf.indexOf('\r\n\r\n');
  const lf = buf.indexOf('\n\n');
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return { index: crlf, length: 4 };
  if (lf >= 0) return { index: lf, length: 2 };
  return undefined;
}

function decodeBasic(header: string | undefined): string | undefined {
  const m = /^Basic\s+(.+)$/i.exec(header ?? '');
  return m ? Buffer.from(m[1], 'base64').toString('utf8') : undefined;
}
