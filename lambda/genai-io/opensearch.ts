// The OpenSearch and Bedrock I/O the RAG handlers share (lambda/knn-index, lambda/ingest-documents,
// lambda/rag-query). Not a handler (no index.ts): each handler's bundle includes what it imports.
//
// OpenSearch Service is reached with a few SigV4-signed HTTPS calls of our own rather than
// @opensearch-project/opensearch, which added ~290 KiB to each bundle for the ten calls made here. The
// signer (@smithy/signature-v4), its SHA-256 (@smithy/core/checksum) and the credential chain are the
// ones every SDK client of the bundle already carries. Errors keep opensearch-js's names (ResponseError,
// TimeoutError, ConnectionError) and its `statusCode` / `meta.statusCode`, so that log lines,
// `openSearchStatus` and `classifyServiceError` (lambda/shared/retrieval.ts) read them as before.
import { createHash } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { Sha256 } from '@smithy/core/checksum';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';

export type OpenSearchMethod = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE';

export interface OpenSearchRequest {
  readonly method: OpenSearchMethod;
  /** The path below the endpoint, starting with '/', its segments already URI-encoded. */
  readonly path: string;
  readonly query?: Readonly<Record<string, string | number | boolean | undefined>>;
  /** A JSON body (serialized here), or with `ndjson` the lines of an NDJSON body. */
  readonly body?: unknown;
  /** Send `body` (an array) as NDJSON (application/x-ndjson), one JSON document a line, as `_bulk` takes it. */
  readonly ndjson?: boolean;
}

export interface OpenSearchResponse<T = unknown> {
  readonly statusCode: number;
  /** The parsed JSON body (the raw text when it is not JSON); undefined for HEAD and empty bodies. */
  readonly body: T;
}

/** A signed HTTP connection to one OpenSearch endpoint: a 2xx answer resolves, anything else rejects. */
export interface OpenSearchHttp {
  request<T = unknown>(request: OpenSearchRequest): Promise<OpenSearchResponse<T>>;
}

/** An answer outside 2xx. `name` stays 'ResponseError' (opensearch-js's): rag-query's 502 message quotes it. */
export class OpenSearchResponseError extends Error {
  override readonly name = 'ResponseError';
  readonly statusCode: number;
  readonly meta: { readonly statusCode: number; readonly body: unknown };
  /** The OpenSearch error type (`error.type` of the body), e.g. `index_not_found_exception`. */
  readonly type?: string;

  /** `request` names the call in the message, e.g. 'PUT /docs'. */
  constructor(statusCode: number, body: unknown, request?: string) {
    const error = (body as { error?: unknown } | undefined)?.error;
    const type = typeof error === 'object' && error !== null && typeof (error as { type?: unknown }).type === 'string' ? (error as { type: string }).type : undefined;
    super(`HTTP ${statusCode}${request === undefined ? '' : ` from ${request}`}${describeErrorBody(body)}`);
    this.statusCode = statusCode;
    this.meta = { statusCode, body };
    if (type !== undefined) this.type = type;
  }
}

/** No complete answer within the request timeout (opensearch-js's name). */
export class OpenSearchTimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

/** The connection failed: refused, reset, DNS, TLS (opensearch-js's name). */
export class OpenSearchConnectionError extends Error {
  override readonly name = 'ConnectionError';
}

interface ErrorCause {
  readonly type?: unknown;
  readonly reason?: unknown;
}

/** `: <type>: <reason>` of an OpenSearch error body, with root causes that say more; or what else the body says. */
function describeErrorBody(body: unknown): string {
  if (typeof body === 'string') return body.trim() === '' ? '' : `: ${body.trim().slice(0, 500)}`;
  if (typeof body !== 'object' || body === null) return '';
  const { error, message } = body as { error?: unknown; message?: unknown };
  if (typeof error === 'string') return `: ${error}`;
  if (typeof error === 'object' && error !== null) {
    const top = error as ErrorCause & { root_cause?: unknown };
    const describe = (cause: ErrorCause) => [cause.type, cause.reason].filter((part) => typeof part === 'string').join(': ');
    const causes = (Array.isArray(top.root_cause) ? (top.root_cause as ErrorCause[]) : [])
      .filter((cause) => typeof cause === 'object' && cause !== null && (cause.type !== top.type || cause.reason !== top.reason))
      .map((cause) => `[${String(cause.type)}] ${String(cause.reason)}`);
    const text = describe(top);
    return `${text === '' ? '' : `: ${text}`}${causes.length > 0 ? ` (root cause: ${causes.join('; ')})` : ''}`;
  }
  // The security plugin's REST API answers { status, message }.
  if (typeof message === 'string') return `: ${message}`;
  return '';
}

/** The HTTP status of an OpenSearch client error, when it got a response. */
export function openSearchStatus(error: unknown): number | undefined {
  const status = (error as { meta?: { statusCode?: number }; statusCode?: number } | undefined)?.meta?.statusCode ?? (error as { statusCode?: number } | undefined)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

export interface SignedOpenSearchHttpOptions {
  /** `https://host[:port]` of the domain (`http://` for local stand-ins). */
  readonly endpoint: string;
  readonly region: string;
  readonly credentials: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  /** Per attempt: from sending the request to the end of the answer. */
  readonly requestTimeoutMs?: number;
  /** Attempts after the first one (opensearch-js's maxRetries). */
  readonly maxRetries?: number;
  /** Base of the pause before a retry (doubled each time, with jitter). */
  readonly retryDelayMs?: number;
}

/** Statuses of a gateway or an overloaded node that a retry may get past (as opensearch-js). */
const RETRIED_STATUSES = new Set([502, 503, 504]);

const escapeQuery = (value: string) => encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * OpenSearchHttp over node:https (node:http for an `http://` endpoint) with a keep-alive agent, every
 * request signed with SigV4 for service `es`: the host header and an `x-amz-content-sha256` of the body
 * are signed, as opensearch-js's AwsSigv4Signer does.
 *
 * Retries: up to `maxRetries` more attempts after a connection error, a timeout or a 502/503/504, with a
 * short jittered pause. Every request the handlers send is safe to repeat (reads, PUTs of whole
 * documents, bulk `index` with explicit ids, delete by query; a repeated index create ends in
 * resource_already_exists_exception, which knn-index handles). 4xx answers are final. 429 is not retried
 * either: each caller already has a backoff of its own (rag-query answers 429 for the client to retry,
 * ingest-documents fails the SQS message, which comes back after the visibility timeout), and retrying
 * here within a Lambda invocation would only add load while OpenSearch is shedding it.
 */
export class SignedOpenSearchHttp implements OpenSearchHttp {
  private readonly url: URL;
  private readonly basePath: string;
  private readonly signer: SignatureV4;
  private readonly agent: HttpAgent;
  private readonly send: typeof httpRequest;
  private readonly requestTimeoutMs: number;
  private readonly maxRetries: number;
  private readonly retryDelayMs: number;

  constructor(options: SignedOpenSearchHttpOptions) {
    this.url = new URL(/^https?:\/\//.test(options.endpoint) ? options.endpoint : `https://${options.endpoint}`);
    this.basePath = this.url.pathname.replace(/\/+$/, '');
    this.signer = new SignatureV4({ service: 'es', region: options.region, credentials: options.credentials, sha256: Sha256 });
    const agentOptions = { keepAlive: true, keepAliveMsecs: 1000, maxSockets: 256, scheduling: 'lifo' as const };
    const secure = this.url.protocol === 'https:';
    this.agent = secure ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
    this.send = secure ? httpsRequest : httpRequest;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.maxRetries = options.maxRetries ?? 2;
    this.retryDelayMs = options.retryDelayMs ?? 100;
  }

  async request<T = unknown>(request: OpenSearchRequest): Promise<OpenSearchResponse<T>> {
    const body = serialize(request);
    for (let attempt = 0; ; attempt++) {
      let failure: Error;
      try {
        const response = await this.attempt(request, body);
        if (response.statusCode >= 200 && response.statusCode < 300) return response as OpenSearchResponse<T>;
        failure = new OpenSearchResponseError(response.statusCode, response.body, `${request.method} ${request.path}`);
        if (!RETRIED_STATUSES.has(response.statusCode)) throw failure;
      } catch (error) {
        if (!(error instanceof OpenSearchTimeoutError || error instanceof OpenSearchConnectionError)) throw error;
        failure = error;
      }
      if (attempt >= this.maxRetries) throw failure;
      await new Promise((resolve) => setTimeout(resolve, this.retryDelayMs * 2 ** attempt * (0.5 + Math.random() / 2)));
    }
  }

  /** One signed exchange; rejects only with a timeout or connection error. */
  private async attempt(request: OpenSearchRequest, body: { text: string; contentType: string } | undefined): Promise<OpenSearchResponse> {
    const query: Record<string, string> = {};
    for (const [key, value] of Object.entries(request.query ?? {})) if (value !== undefined) query[key] = String(value);
    const path = `${this.basePath}${request.path}`;
    const headers: Record<string, string> = {
      host: this.url.host,
      'x-amz-content-sha256': createHash('sha256').update(body?.text ?? '', 'utf8').digest('hex'),
    };
    if (body !== undefined) {
      headers['content-type'] = body.contentType;
      headers['content-length'] = String(Buffer.byteLength(body.text));
    }
    const signed = await this.signer.sign({ method: request.method, protocol: this.url.protocol, hostname: this.url.hostname, path, query, headers, body: body?.text });
    const search = Object.entries(query)
      .map(([key, value]) => `${escapeQuery(key)}=${escapeQuery(value)}`)
      .join('&');
    const options: RequestOptions = {
      method: request.method,
      hostname: this.url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: this.url.port === '' ? undefined : Number(this.url.port),
      path: search === '' ? path : `${path}?${search}`,
      headers: signed.headers,
      agent: this.agent,
    };
    const described = `${request.method} ${request.path}`;
    return new Promise((resolve, reject) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const finish = (outcome: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        outcome();
      };
      const connectionFailed = (error: Error) =>
        finish(() => reject(new OpenSearchConnectionError(`OpenSearch connection failed during ${described}: ${error.message}`, { cause: error })));
      const req = this.send(options, (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', connectionFailed);
        res.on('end', () => {
          const statusCode = res.statusCode ?? 0;
          finish(() => resolve({ statusCode, body: request.method === 'HEAD' ? undefined : parseBody(Buffer.concat(chunks).toString('utf8')) }));
        });
        res.on('close', () => {
          if (!res.complete) connectionFailed(new Error('the connection closed before the end of the answer'));
        });
      });
      timer = setTimeout(() => {
        finish(() => reject(new OpenSearchTimeoutError(`OpenSearch did not answer ${described} within ${this.requestTimeoutMs} ms`)));
        req.destroy();
      }, this.requestTimeoutMs);
      req.on('error', connectionFailed);
      req.setNoDelay(true);
      req.end(body?.text);
    });
  }
}

function serialize(request: OpenSearchRequest): { text: string; contentType: string } | undefined {
  if (request.body === undefined) return undefined;
  if (request.ndjson) {
    if (!Array.isArray(request.body)) throw new TypeError('an NDJSON body is an array of lines');
    return { text: request.body.map((line) => `${typeof line === 'string' ? line : JSON.stringify(line)}\n`).join(''), contentType: 'application/x-ndjson' };
  }
  return { text: typeof request.body === 'string' ? request.body : JSON.stringify(request.body), contentType: 'application/json' };
}

function parseBody(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** One item of a `_bulk` answer: `{ index: { status, error? } }` (or create, update, delete). */
export type BulkItem = Record<string, { status?: number; error?: { type?: string; reason?: string } } | undefined>;

export interface BulkResponse {
  readonly errors?: boolean;
  readonly items?: BulkItem[];
}

export interface DeleteByQueryResponse {
  readonly deleted?: number;
}

export interface SearchResponse<THit> {
  readonly hits?: { readonly hits?: THit[] };
}

const indexPath = (index: string) => `/${encodeURIComponent(index)}`;

/** The OpenSearch APIs the RAG handlers call, over any OpenSearchHttp. Each resolves to the answer's body. */
export class OpenSearch {
  constructor(readonly http: OpenSearchHttp) {}

  /** HEAD /<index>: true on 200, false on 404. */
  async indexExists(index: string): Promise<boolean> {
    try {
      await this.http.request({ method: 'HEAD', path: indexPath(index) });
      return true;
    } catch (error) {
      if (openSearchStatus(error) === 404) return false;
      throw error;
    }
  }

  /** PUT /<index> with its settings and mappings. */
  async createIndex(index: string, body: Record<string, unknown>): Promise<unknown> {
    return (await this.http.request({ method: 'PUT', path: indexPath(index), body })).body;
  }

  /** The `mappings` of the index (GET /<index>/_mapping). */
  async getMapping(index: string): Promise<unknown> {
    const { body } = await this.http.request<Record<string, { mappings?: unknown } | undefined>>({ method: 'GET', path: `${indexPath(index)}/_mapping` });
    return body?.[index]?.mappings;
  }

  /** PUT /<index>/_mapping: adds fields. */
  async putMapping(index: string, body: Record<string, unknown>): Promise<unknown> {
    return (await this.http.request({ method: 'PUT', path: `${indexPath(index)}/_mapping`, body })).body;
  }

  /** DELETE /<index>. */
  async deleteIndex(index: string): Promise<unknown> {
    return (await this.http.request({ method: 'DELETE', path: indexPath(index) })).body;
  }

  /** PUT of a JSON document to a path, e.g. the security plugin's roles and rolesmapping APIs. */
  async put(path: string, body: unknown): Promise<unknown> {
    return (await this.http.request({ method: 'PUT', path, body })).body;
  }

  /** DELETE of a path. */
  async delete(path: string): Promise<unknown> {
    return (await this.http.request({ method: 'DELETE', path })).body;
  }

  /** POST /<index>/_delete_by_query. */
  async deleteByQuery(index: string, body: Record<string, unknown>, params: { conflicts?: 'abort' | 'proceed'; refresh?: boolean } = {}): Promise<DeleteByQueryResponse> {
    return (await this.http.request<DeleteByQueryResponse>({ method: 'POST', path: `${indexPath(index)}/_delete_by_query`, query: params, body })).body ?? {};
  }

  /** POST /_bulk: action and document lines, sent as NDJSON. Per-item failures are in the answer (`errors`, `items`), not thrown. */
  async bulk(lines: readonly unknown[]): Promise<BulkResponse> {
    return (await this.http.request<BulkResponse>({ method: 'POST', path: '/_bulk', body: lines, ndjson: true })).body ?? {};
  }

  /** POST /<index>/_search. */
  async search<THit = unknown>(index: string, body: Record<string, unknown>): Promise<SearchResponse<THit>> {
    return (await this.http.request<SearchResponse<THit>>({ method: 'POST', path: `${indexPath(index)}/_search`, body })).body ?? {};
  }
}

const clients = new Map<string, OpenSearch>();

/**
 * The OpenSearch APIs of a domain endpoint (`https://...`), every request signed with SigV4 for service
 * `es` with the function's role, which fine-grained access control maps to an OpenSearch role. Region
 * from AWS_REGION / AWS_DEFAULT_REGION. One client per endpoint for the life of the execution
 * environment (the timeout of the first call for an endpoint holds).
 */
export function openSearchClient(endpoint: string, requestTimeoutMs = 10_000): OpenSearch {
  const node = /^https?:\/\//.test(endpoint) ? endpoint : `https://${endpoint}`;
  let client = clients.get(node);
  if (client === undefined) {
    const region = process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
    client = new OpenSearch(new SignedOpenSearchHttp({ endpoint: node, region, credentials: defaultProvider(), requestTimeoutMs, maxRetries: 2 }));
    clients.set(node, client);
  }
  return client;
}
