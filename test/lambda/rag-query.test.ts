import { apiGatewayEvent, handlerModulePaths, invokeApi, useHandlerEnv, type ApiHandler } from '../support/handler-harness';
import { invokeModelBody, loadWithBedrockMocks, startFakeServer, type FakeServer, type LoadedWithBedrock, type RecordedRequest } from '../support/rag-fixtures';

const ENV_KEYS = [
  'OPENSEARCH_ENDPOINT',
  'INDEX_NAME',
  'EMBEDDING_MODEL_ID',
  'EMBEDDING_DIMENSION',
  'GENERATION_MODEL_ID',
  'TOP_K',
  'SCORE_FLOOR',
  'HYBRID',
  'MAX_QUESTION_CHARACTERS',
  'PROMPT_ARN',
  'PROMPT_VERSION',
  'GUARDRAIL_ID',
  'GUARDRAIL_VERSION',
] as const;
const setEnv = useHandlerEnv(ENV_KEYS, {
  INDEX_NAME: 'docs',
  EMBEDDING_MODEL_ID: 'amazon.titan-embed-text-v2:0',
  EMBEDDING_DIMENSION: '256',
  GENERATION_MODEL_ID: 'anthropic.claude-3-haiku-20240307-v1:0',
  TOP_K: '2',
  SCORE_FLOOR: '0.5',
  HYBRID: 'false',
  MAX_QUESTION_CHARACTERS: '100',
  PROMPT_ARN: 'arn:aws:bedrock:us-east-1:123456789012:prompt/PROMPT1',
  PROMPT_VERSION: '3',
  GUARDRAIL_ID: 'gr-1',
  GUARDRAIL_VERSION: '2',
});
const route = { httpMethod: 'POST', resource: '/query', pathParameters: null };
const vector = Array.from({ length: 256 }, (_, i) => i / 256);
const hit = (id: string, score: number, chunk: number) => ({ _id: id, _score: score, _source: { document_id: `d-${id}`, source_uri: `s3://kb/documents/${id}.md`, source_key: `documents/${id}.md`, chunk_index: chunk, text: `Passage ${id}.` } });

let opensearch: FakeServer;
let loaded: LoadedWithBedrock<ApiHandler>;
let knnHits: unknown[] = [];
let textHits: unknown[] = [];

function searchRoute(request: RecordedRequest) {
  if (request.method === 'POST' && request.path === '/docs/_search') {
    const body = JSON.parse(request.body);
    return { status: 200, body: { hits: { hits: body.query.knn ? knnHits : textHits } } };
  }
  return { status: 400, body: {} };
}

const storedPrompt = {
  id: 'PROMPT1',
  name: 'rag',
  defaultVariant: 'default',
  variants: [
    {
      name: 'default',
      templateType: 'CHAT',
      templateConfiguration: {
        chat: {
          system: [{ text: 'Answer from the passages.' }],
          messages: [
            { role: 'user', content: [{ text: 'Example?' }] },
            { role: 'assistant', content: [{ text: 'Example [1].' }] },
            { role: 'user', content: [{ text: 'Passages:\n{{context}}\nQuestion: {{question}}' }] },
          ],
        },
      },
      inferenceConfiguration: { text: { maxTokens: 256, temperature: 0 } },
    },
  ],
};

function load(hybrid = false) {
  setEnv({ OPENSEARCH_ENDPOINT: opensearch.endpoint, HYBRID: String(hybrid) });
  loaded = loadWithBedrockMocks<ApiHandler>(handlerModulePaths('rag-query').source);
  loaded.runtime.on(loaded.runtimeSdk.InvokeModelCommand).resolves({ body: invokeModelBody({ embedding: vector }) } as never);
  loaded.agent.on(loaded.agentSdk.GetPromptCommand).resolves(storedPrompt as never);
}

beforeAll(async () => {
  opensearch = await startFakeServer(searchRoute);
});
afterAll(() => opensearch.stop());
beforeEach(() => {
  opensearch.requests.length = 0;
  knnHits = [hit('a', 0.9, 0), hit('b', 0.7, 2), hit('c', 0.2, 1)];
  textHits = [];
  load();
});

test('answers from the passages above the floor, with citations, through Converse under the guardrail', async () => {
  loaded.runtime.on(loaded.runtimeSdk.ConverseCommand).resolves({
    output: { message: { role: 'assistant', content: [{ text: 'It is so [2].' }] } },
    stopReason: 'end_turn',
    usage: { inputTokens: 10, outputTokens: 5, totalTokens: 15 },
  } as never);
  const { response, body } = await invokeApi(loaded.handler, apiGatewayEvent(route, { question: '  Why? ' }));
  expect(response.statusCode).toBe(200);
  expect(body).toMatchObject({
    answer: 'It is so [2].',
    citations: [{ marker: 2, documentId: 'd-b', source: 's3://kb/documents/b.md', chunkIndex: 2, score: 0.7 }],
    citationsExplicit: true,
    promptVersion: '3',
    guardrail: 'none',
  });
  const embed = loaded.runtime.commandCalls(loaded.runtimeSdk.InvokeModelCommand)[0].args[0].input;
  expect(embed.modelId).toBe('amazon.titan-embed-text-v2:0');
  expect(JSON.parse(String(embed.body))).toEqual({ inputText: 'Why?', dimensions: 256, normalize: true });
  expect(opensearch.requests).toHaveLength(1);
  expect(JSON.parse(opensearch.requests[0].body)).toMatchObject({ size: 2, query: { knn: { embedding: { vector, k: 2 } } } });
  expect(loaded.agent.commandCalls(loaded.agentSdk.GetPromptCommand)[0].args[0].input).toEqual({ promptIdentifier: 'arn:aws:bedrock:us-east-1:123456789012:prompt/PROMPT1', promptVersion: '3' });
  const converse = loaded.runtime.commandCalls(loaded.runtimeSdk.ConverseCommand)[0].args[0].input;
  expect(converse).toMatchObject({
    modelId: 'anthropic.claude-3-haiku-20240307-v1:0',
    system: [{ text: 'Answer from the passages.' }],
    inferenceConfig: { maxTokens: 256, temperature: 0 },
    guardrailConfig: { guardrailIdentifier: 'gr-1', guardrailVersion: '2', trace: 'enabled' },
  });
  expect(converse.messages?.map((message) => message.role)).toEqual(['user', 'assistant', 'user']);
  expect(converse.messages?.[2].content).toEqual([
    { text: 'Passages:\n' },
    { guardContent: { text: { text: '[1] documents/a.md (chunk 0)\nPassage a.\n\n[2] documents/b.md (chunk 2)\nPassage b.', qualifiers: ['grounding_source'] } } },
    { text: '\nQuestion: ' },
    { guardContent: { text: { text: 'Why?', qualifiers: ['query'] } } },
  ]);
});

test('returns 404 NoRelevantDocuments without calling the model when nothing reaches the floor', async () => {
  knnHits = [hit('c', 0.2, 1)];
  const { response, body } = await invokeApi(loaded.handler, apiGatewayEvent(route, { question: 'Unrelated?' }));
  expect(response.statusCode).toBe(404);
  expect(body).toEqual({ error: 'NoRelevantDocuments', message: 'no indexed passage reaches the relevance floor (score >= 0.5); the question was not sent to the model' });
  expect(loaded.runtime.commandCalls(loaded.runtimeSdk.ConverseCommand)).toHaveLength(0);
});

test('answers 422 with the guardrail message and the side it stopped when the guardrail intervenes', async () => {
  loaded.runtime.on(loaded.runtimeSdk.ConverseCommand).resolves({
    output: { message: { role: 'assistant', content: [{ text: 'Sorry, I cannot answer that question.' }] } },
    stopReason: 'guardrail_intervened',
    trace: { guardrail: { inputAssessment: { 'gr-1': { topicPolicy: { topics: [{ name: 'Investment advice', type: 'DENY', action: 'BLOCKED' }] } } } } },
  } as never);
  const { response, body } = await invokeApi(loaded.handler, apiGatewayEvent(route, { question: 'Which stock?' }));
  expect(response.statusCode).toBe(422);
  expect(body).toEqual({ error: 'GuardrailIntervened', message: 'Sorry, I cannot answer that question.', guardrail: 'intervened', side: 'input' });
});

test('returns the answer with personal data masked when the guardrail only anonymized it', async () => {
  loaded.runtime.on(loaded.runtimeSdk.ConverseCommand).resolves({
    output: { message: { role: 'assistant', content: [{ text: 'Ask {EMAIL} [1].' }] } },
    stopReason: 'guardrail_intervened',
    trace: { guardrail: { outputAssessments: { 'gr-1': [{ sensitiveInformationPolicy: { piiEntities: [{ match: 'hr@example.com', type: 'EMAIL', action: 'ANONYMIZED' }] } }] } } },
  } as never);
  const { response, body } = await invokeApi(loaded.handler, apiGatewayEvent(route, { question: 'Who do I ask?' }));
  expect(response.statusCode).toBe(200);
  expect(body).toMatchObject({ answer: 'Ask {EMAIL} [1].', guardrail: 'masked', citations: [{ marker: 1 }] });
});

test('answers 429 when Bedrock throttles', async () => {
  loaded.runtime.on(loaded.runtimeSdk.ConverseCommand).rejects(Object.assign(new Error('Too many requests'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 429 } }));
  const { response, body } = await invokeApi(loaded.handler, apiGatewayEvent(route, { question: 'Why?' }));
  expect(response.statusCode).toBe(429);
  expect(body.error).toBe('Throttled');
});

test.each([
  [{ question: 'x'.repeat(101) }, 'question: is too long: 101 characters; the limit is 100'],
  [{ question: '' }, 'question: must not be blank'],
  [{ q: 'hi' }, 'q: is not a field of the request'],
])('rejects %j with 400 naming the field, before any call', async (requestBody, message) => {
  const { response, body } = await invokeApi(loaded.handler, apiGatewayEvent(route, requestBody));
  expect(response.statusCode).toBe(400);
  expect(body).toEqual({ error: 'BadRequest', message: expect.stringContaining(message) });
  expect(loaded.runtime.calls()).toHaveLength(0);
  expect(opensearch.requests).toHaveLength(0);
});

test('hybrid search adds a BM25 query and fuses both rankings', async () => {
  load(true);
  textHits = [hit('z', 14.2, 0), hit('b', 9.1, 2)];
  loaded.runtime.on(loaded.runtimeSdk.ConverseCommand).resolves({ output: { message: { role: 'assistant', content: [{ text: 'Done.' }] } }, stopReason: 'end_turn' } as never);
  const { body } = await invokeApi(loaded.handler, apiGatewayEvent(route, { question: 'Why?' }));
  expect(opensearch.requests.map((request) => Object.keys(JSON.parse(request.body).query)[0])).toEqual(['knn', 'match']);
  expect(JSON.parse(opensearch.requests[1].body)).toMatchObject({ size: 2, query: { match: { text: { query: 'Why?' } } } });
  // b is in both lists, so it ranks first; then a (first in k-NN) and z (first in BM25) tie and k-NN's order wins.
  expect((body.citations as Array<{ documentId: string }>).map((citation) => citation.documentId)).toEqual(['d-b', 'd-a']);
});

test('answers 500 naming the variable when the configuration is broken', async () => {
  setEnv({ OPENSEARCH_ENDPOINT: opensearch.endpoint, TOP_K: 'many' });
  const broken = loadWithBedrockMocks<ApiHandler>(handlerModulePaths('rag-query').source);
  const { response, body } = await invokeApi(broken.handler, apiGatewayEvent(route, { question: 'Why?' }));
  expect(response.statusCode).toBe(500);
  expect(body.message).toMatch(/^TOP_K: /);
});
