/**
 * A fake "internet" for proxy tests, run inside a test network namespace: HTTPS and
 * plain HTTP origin servers that echo what they received, and a DNS server that
 * records every query it gets (to prove which names a proxy resolved).
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { Netns, startNodeInNetns } from './netns';

export interface TestCertificate {
  readonly certPem: string;
  readonly keyPem: string;
}

/**
 * A self-signed certificate (P-256, valid one day) for `names` (DNS SANs, wildcards
 * allowed), made with the `openssl` command in `dir`.
 */
export function makeSelfSignedCert(dir: string, names: readonly string[]): TestCertificate {
  const keyFile = path.join(dir, 'origin.key');
  const certFile = path.join(dir, 'origin.crt');
  execFileSync(
    'openssl',
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-days', '1', '-subj', '/CN=paddock test origin',
      '-addext', `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`,
      '-keyout', keyFile, '-out', certFile,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 },
  );
  return { certPem: fs.readFileSync(certFile, 'utf8'), keyPem: fs.readFileSync(keyFile, 'utf8') };
}

export interface OriginOptions {
  /** Address (in the namespace) the servers bind to. */
  readonly address: string;
  readonly httpsPorts: readonly number[];
  readonly httpPorts: readonly number[];
  readonly cert: TestCertificate;
  /**
   * Answer DNS on `address`:53 (UDP): A/AAAA records by lower-case name; every other
   * name gets NXDOMAIN. Every query is recorded.
   * @default - no DNS server
   */
  readonly dnsRecords?: Readonly<Record<string, readonly string[]>>;
}

/** What an origin server received; its response body is this, as JSON. */
export interface OriginEcho {
  readonly scheme: 'https' | 'http';
  /** TLS SNI (https only). */
  readonly sni?: string;
  readonly port: number;
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string | string[] | undefined>;
}

export interface DnsQuery {
  readonly name: string;
  /** 'A', 'AAAA', 'PTR', or the numeric type. */
  readonly type: string;
}

export interface Origin {
  /** DNS queries received so far, in order. */
  dnsQueries(): Promise<DnsQuery[]>;
  stop(): Promise<void>;
}

const ORIGIN_SOURCE = `
const https = require('https');
const http = require('http');
const dgram = require('dgram');
const net = require('net');
const queries = [];
const closers = [];

function echo(scheme, port) {
  return (req, res) => {
    const body = JSON.stringify({
      scheme, port, sni: scheme === 'https' ? req.socket.servername : undefined,
      method: req.method, url: req.url, headers: req.headers,
    });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
}

function listen(server, port, address) {
  closers.push(() => server.close());
  return new Promise((resolve, reject) => { server.once('error', reject); server.listen(port, address, resolve); });
}

const TYPES = { 1: 'A', 12: 'PTR', 28: 'AAAA' };

function dnsAnswer(msg, records) {
  // Header (12 bytes), then one question: labels, type, class.
  let off = 12;
  const labels = [];
  while (off < msg.length && msg[off] !== 0) {
    const len = msg[off];
    labels.push(msg.slice(off + 1, off + 1 + len).toString('ascii'));
    off += 1 + len;
  }
  const qend = off + 5;
  if (qend > msg.length) return undefined;
  const name = labels.join('.').toLowerCase();
  const qtype = msg.readUInt16BE(off + 1);
  queries.push({ name, type: TYPES[qtype] || String(qtype) });
  const addrs = records[name];
  const wanted = (addrs || []).filter((a) => net.isIP(a) === (qtype === 1 ? 4 : qtype === 28 ? 6 : -1));
  const answers = wanted.map((a) => {
    const rdata = qtype === 1 ? Buffer.from(a.split('.').map(Number)) : ipv6Bytes(a);
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc00c, 0);
    rr.writeUInt16BE(qtype, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(60, 6);
    rr.writeUInt16BE(rdata.length, 10);
    return Buffer.concat([rr, rdata]);
  });
  const header = Buffer.alloc(12);
  msg.copy(header, 0, 0, 2);
  const rd = msg[2] & 0x01;
  header[2] = 0x84 | rd; // QR, AA, RD copied
  header[3] = 0x80 | (addrs ? 0 : 3); // RA; NOERROR or NXDOMAIN
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  return Buffer.concat([header, msg.slice(12, qend), ...answers]);
}

function ipv6Bytes(a) {
  const [head, tail] = a.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}

async function init(c) {
  for (const port of c.httpsPorts) {
    await listen(https.createServer({ cert: c.cert.certPem, key: c.cert.keyPem }, echo('https', port)), port, c.address);
  }
  for (const port of c.httpPorts) {
    await listen(http.createServer(echo('http', port)), port, c.address);
  }
  if (c.dnsRecords) {
    const sock = dgram.createSocket('udp4');
    sock.on('message', (msg, rinfo) => {
      try {
        const reply = dnsAnswer(msg, c.dnsRecords);
        if (reply) sock.send(reply, rinfo.port, rinfo.address);
      } catch (e) { /* malformed query: no answer */ }
    });
    closers.push(() => sock.close());
    await new Promise((resolve, reject) => { sock.once('error', reject); sock.bind(53, c.address, resolve); });
  }
}

async function handle(op) {
  if (op === 'dnsQueries') return queries;
  throw new Error('unknown op ' + op);
}

process.on('SIGTERM', () => { closers.forEach((f) => f()); process.exit(0); });
`;

/** Starts the origin servers (and DNS server) inside `ns`; resolves once all listen. */
export async function startOrigin(ns: Netns, opts: OriginOptions): Promise<Origin> {
  const node = await startNodeInNetns(ns, ORIGIN_SOURCE, opts);
  return {
    dnsQueries: () => node.call<DnsQuery[]>('dnsQueries'),
    stop: () => node.stop(),
  };
}
