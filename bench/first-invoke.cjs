// Run in a fresh `node` process by `npm run bench` (and by test/lambda/rag-bundles.test.ts): times a RAG
// handler bundle's cold start in two parts, require() (module-scope initialisation) and its first
// invocation, against a local HTTP stand-in for every service it calls (Bedrock Runtime, Bedrock Agent,
// S3, OpenSearch, CloudFormation's response URL), and prints both with the handler's result as JSON.
//
//   node bench/first-invoke.cjs <knn-index|ingest-documents|rag-query> <bundle.js>
'use strict';
const { createServer } = require('node:http');
const http2 = require('node:http2');
const { performance } = require('node:perf_hooks');

const [scenario, file] = process.argv.slice(2);
if (!scenario || !file) {
  process.stderr.write('usage: node bench/first-invoke.cjs <knn-index|ingest-documents|rag-query> <bundle.js>\n');
  process.exit(2);
}

const DIMENSION = 256;
const vector = Array.from({ length: DIMENSION }, (_, i) => (i % 7) / 7);
const requests = [];

function answer(req, body) {
  const url = new URL(req.url, 'http://localhost');
  requests.push(`${req.method} ${url.pathname}`);
  if (url.pathname.startsWith('/model/') && url.pathname.endsWith('/invoke')) return [200, { embedding: vector }];
  if (url.pathname.startsWith('/model/') && url.pathname.endsWith('/converse')) {
    return [200, { output: { message: { role: 'assistant', content: [{ text: 'Two days per month [1].' }] } }, stopReason: 'end_turn', usage: { inputTokens: 50, outputTokens: 8, totalTokens: 58 }, metrics: { latencyMs: 5 } }];
  }
  if (url.pathname.startsWith('/prompts/')) {
    return [200, {
      id: 'PROMPT1', name: 'rag', version: '1', defaultVariant: 'default',
      variants: [{ name: 'default', templateType: 'CHAT', templateConfiguration: { chat: { system: [{ text: 'Answer from the passages.' }], messages: [{ role: 'user', content: [{ text: 'Passages:\n{{context}}\nQuestion: {{question}}' }] }] } } }],
    }];
  }
  if (url.pathname === '/docs/_search') {
    return [200, { hits: { hits: [{ _id: 'd:0', _score: 0.9, _source: { document_id: 'd', source_uri: 's3://kb/documents/handbook.md', source_key: 'documents/handbook.md', chunk_index: 0, text: 'Employees accrue two days of leave per month.' } }] } }];
  }
  if (url.pathname === '/_bulk') return [200, { took: 1, errors: false, items: body.split('\n').filter((l) => l.includes('"index"')).map(() => ({ index: { status: 201 } })) }];
  if (url.pathname === '/docs/_delete_by_query') return [200, { deleted: 0 }];
  if (url.pathname === '/kb/documents/handbook.md') return [200, 'Employees accrue two days of leave per month. Unused leave carries over once.'];
  if (req.method === 'HEAD' && url.pathname === '/docs') return [404, undefined];
  if (url.pathname === '/docs' || url.pathname.startsWith('/_plugins/')) return [200, { acknowledged: true }];
  if (url.pathname === '/cfn-response') return [200, undefined];
  return [404, { error: `no stand-in for ${req.method} ${url.pathname}` }];
}

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const [status, body] = answer(req, Buffer.concat(chunks).toString('utf8'));
    const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(req.method === 'HEAD' ? undefined : text);
  });
});

// Bedrock Runtime's client speaks HTTP/2: it gets a cleartext HTTP/2 stand-in of its own.
const bedrockServer = http2.createServer();
bedrockServer.on('stream', (stream, headers) => {
  const chunks = [];
  stream.on('data', (chunk) => chunks.push(chunk));
  stream.on('end', () => {
    const [status, body] = answer({ method: headers[':method'], url: headers[':path'] }, Buffer.concat(chunks).toString('utf8'));
    stream.respond({ ':status': status, 'content-type': 'application/json' });
    stream.end(JSON.stringify(body));
  });
});

bedrockServer.listen(0, '127.0.0.1', () => server.listen(0, '127.0.0.1', async () => {
  const endpoint = `http://127.0.0.1:${server.address().port}`;
  const bedrockEndpoint = `http://127.0.0.1:${bedrockServer.address().port}`;
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'bench',
    AWS_SECRET_ACCESS_KEY: 'bench',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrockEndpoint,
    AWS_ENDPOINT_URL_BEDROCK_AGENT: endpoint,
    AWS_ENDPOINT_URL_S3: endpoint,
    POWERTOOLS_METRICS_NAMESPACE: 'MlPlatform/Rag',
    OPENSEARCH_ENDPOINT: endpoint,
    INDEX_NAME: 'docs',
    EMBEDDING_MODEL_ID: 'amazon.titan-embed-text-v2:0',
    EMBEDDING_DIMENSION: String(DIMENSION),
    CHUNK_SIZE: '1000',
    CHUNK_OVERLAP: '100',
    GENERATION_MODEL_ID: 'anthropic.claude-3-haiku-20240307-v1:0',
    TOP_K: '3',
    SCORE_FLOOR: '0.2',
    HYBRID: 'false',
    MAX_QUESTION_CHARACTERS: '2000',
    PROMPT_ARN: 'arn:aws:bedrock:us-east-1:123456789012:prompt/PROMPT1',
    PROMPT_VERSION: '1',
    GUARDRAIL_ID: 'gr1',
    GUARDRAIL_VERSION: '1',
  });
  const events = {
    'rag-query': { httpMethod: 'POST', resource: '/query', path: '/query', headers: {}, body: JSON.stringify({ question: 'How much leave do employees accrue?' }), isBase64Encoded: false },
    'ingest-documents': { Records: [{ messageId: 'm1', body: JSON.stringify({ source: 'aws.s3', 'detail-type': 'Object Created', detail: { bucket: { name: 'kb' }, object: { key: 'documents/handbook.md' } } }) }] },
    'knn-index': {
      RequestType: 'Create', ResponseURL: `${endpoint}/cfn-response`, StackId: 'stack', RequestId: 'r1', LogicalResourceId: 'Index', ResourceType: 'Custom::KnnIndex',
      ResourceProperties: { DomainEndpoint: endpoint, IndexName: 'docs', Dimension: String(DIMENSION), Engine: 'faiss', SpaceType: 'l2', Shards: '1', Replicas: '0', WriterRoleArns: [], ReaderRoleArns: [] },
    },
  };
  const event = events[scenario];
  if (!event) {
    process.stderr.write(`unknown scenario ${scenario}\n`);
    process.exit(2);
  }
  // The handlers' structured logs would drown the result line: silence them while measuring.
  const write = process.stdout.write.bind(process.stdout);
  if (!process.env.BENCH_VERBOSE) process.stdout.write = () => true;
  const start = performance.now();
  const { handler } = require(require('node:path').resolve(file));
  const requireMs = performance.now() - start;
  const invokeStart = performance.now();
  let result;
  let error;
  try {
    result = await handler(event);
  } catch (caught) {
    error = String(caught && caught.message);
  }
  const firstInvokeMs = performance.now() - invokeStart;
  process.stdout.write = write;
  server.close();
  bedrockServer.close();
  write(`${JSON.stringify({ requireMs, firstInvokeMs, result, error, requests })}\n`);
  // Keep-alive connections of the handler's clients would hold the process open.
  process.exit(0);
}));
