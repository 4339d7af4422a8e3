// A service that goes away mid-run, on the wire: an HTTP proxy in front of a local service (moto) that lets
// `allow` requests through and then drops every connection; and a Lambda context whose clock runs out.
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Context } from 'aws-lambda';

export interface DroppingProxy {
  /** Point the SDK here (AWS_ENDPOINT_URL_S3, ...). */
  readonly endpoint: string;
  /** Requests still let through; then every connection is dropped. */
  allow: number;
  /** `METHOD path` of every request seen, in order. */
  readonly requests: string[];
  close(): Promise<void>;
}

/** Starts a proxy to `target` on a free port of 127.0.0.1. */
export async function startDroppingProxy(target: string): Promise<DroppingProxy> {
  const upstream = new URL(target);
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    if (proxy.allow <= 0) {
      req.socket.destroy();
      return;
    }
    proxy.allow -= 1;
    const forward = httpRequest({ hostname: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } }, (answer) => {
      res.writeHead(answer.statusCode ?? 500, answer.headers);
      answer.pipe(res);
    });
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  const proxy = {
    endpoint: '',
    allow: Number.POSITIVE_INFINITY,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}

/** A Lambda context whose clock runs out after the function has looked at it `checks` times (15 minutes, then 1 s). */
export function contextRunningOutAfter(checks: number): Context {
  let looked = 0;
  return { getRemainingTimeInMillis: () => (looked++ < checks ? 900_000 : 1_000) } as unknown as Context;
}
