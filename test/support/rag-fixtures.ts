// Test helpers of the RAG handlers: an HTTP server standing in for OpenSearch (and for CloudFormation's
// response URL) that records every request, and handler loading with the Bedrock clients mocked.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type * as BedrockAgentSdk from '@aws-sdk/client-bedrock-agent';
import type * as BedrockRuntimeSdk from '@aws-sdk/client-bedrock-runtime';
import { mockClient, type AwsStub } from 'aws-sdk-client-mock';

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

export interface FakeAnswer {
  readonly status: number;
  readonly body?: unknown;
}

export type FakeRoute = (request: RecordedRequest) => FakeAnswer;

export interface FakeServer {
  readonly endpoint: string;
  readonly requests: RecordedRequest[];
  route: FakeRoute;
  stop(): Promise<void>;
}

/** An HTTP server on 127.0.0.1 that records each request and answers with `route` (JSON bodies). */
export async function startFakeServer(route: FakeRoute = () => ({ status: 200, body: {} })): Promise<FakeServer> {
  const requests: RecordedRequest[] = [];
  const fake: { route: FakeRoute } = { route };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const recorded = { method: req.method ?? '', path: url.pathname, query: url.search, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      requests.push(recorded);
      const answer = fake.route(recorded);
      const text = answer.body === undefined ? '' : JSON.stringify(answer.body);
      res.writeHead(answer.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(req.method === 'HEAD' ? undefined : text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    requests,
    get route() {
      return fake.route;
    },
    set route(next: FakeRoute) {
      fake.route = next;
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The NDJSON lines of a `_bulk` body, parsed. */
export function ndjson(body: string): unknown[] {
  return body
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line));
}

export type BedrockRuntimeMock = AwsStub<BedrockRuntimeSdk.ServiceInputTypes, BedrockRuntimeSdk.ServiceOutputTypes, BedrockRuntimeSdk.BedrockRuntimeClientResolvedConfig>;
export type BedrockAgentMock = AwsStub<BedrockAgentSdk.ServiceInputTypes, BedrockAgentSdk.ServiceOutputTypes, BedrockAgentSdk.BedrockAgentClientResolvedConfig>;

export interface LoadedWithBedrock<H> {
  readonly handler: H;
  readonly runtime: BedrockRuntimeMock;
  readonly agent: BedrockAgentMock;
  /** The SDK modules of the handler's registry: use their command classes with the mocks. */
  readonly runtimeSdk: typeof BedrockRuntimeSdk;
  readonly agentSdk: typeof BedrockAgentSdk;
}

/** Loads a handler in its own module registry with that registry's Bedrock Runtime and Agent clients mocked. Call after `setEnv`. */
export function loadWithBedrockMocks<H>(path: string): LoadedWithBedrock<H> {
  let loaded: LoadedWithBedrock<H> | undefined;
  jest.isolateModules(() => {
    const runtimeSdk = require('@aws-sdk/client-bedrock-runtime') as typeof BedrockRuntimeSdk;
    const agentSdk = require('@aws-sdk/client-bedrock-agent') as typeof BedrockAgentSdk;
    const runtime = mockClient(runtimeSdk.BedrockRuntimeClient);
    const agent = mockClient(agentSdk.BedrockAgentClient);
    const { handler } = require(path) as { handler: H };
    loaded = { handler, runtime, agent, runtimeSdk, agentSdk };
  });
  if (loaded === undefined) throw new Error('could not load the handler');
  return loaded;
}

/** An InvokeModel response body as the SDK returns it. */
export function invokeModelBody(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}
