import fc from 'fast-check';
import { documentFormat, documentId, MalformedDocumentError, parseDocument } from '../../../lambda/shared/documents';
import { embeddingBatches, embeddingModel, embeddingRequestBody, parseEmbeddingResponse, SUPPORTED_EMBEDDING_MODELS } from '../../../lambda/shared/embeddings';
import { compareMappings, createIndexBody, knnIndexSpecProblems, type KnnIndexSpec } from '../../../lambda/shared/knn-index';
import { blocksText, buildConverseMessages, renderRagPromptBlocks, renderTemplate, templateVariables } from '../../../lambda/shared/prompt';
import { loadQueryConfig, promptFromStored } from '../../../lambda/shared/rag-config';
import {
  buildCitations,
  checkRagRequest,
  classifyServiceError,
  formatContext,
  guardrailOutcome,
  passagesAboveFloor,
  reciprocalRankFusion,
  type RetrievedPassage,
} from '../../../lambda/shared/retrieval';
import { EMBEDDING_MODELS } from '../../../lib/genai/private/bedrock-models';
import { checkPromptTemplate, promptTemplateVariables } from '../../../lib/genai/prompt-template';

describe('parseDocument', () => {
  test('extracts the visible text and title of HTML, without scripts, styles or tags', () => {
    const doc = parseDocument('docs/a.html', '<html><head><title>Leave &amp; pay</title><style>p{}</style></head><body><script>evil()</script><p>Hello&nbsp;world</p><p>Second &#x41;</p></body></html>', 1e6);
    expect(doc).toEqual({ format: 'html', text: 'Hello world\nSecond A', title: 'Leave & pay' });
  });

  test('reads JSON by its text field, or every string value with its path', () => {
    expect(parseDocument('a.json', JSON.stringify({ title: 'T', text: 'body' }), 1e6)).toEqual({ format: 'json', text: 'body', title: 'T' });
    expect(parseDocument('b.json', JSON.stringify({ faq: [{ q: 'Why?', a: 'Because.' }] }), 1e6).text).toBe('faq[0].q: Why?\nfaq[0].a: Because.');
  });

  test('takes the first Markdown heading as the title and keeps the text', () => {
    expect(parseDocument('guide.md', 'intro\n## Setup ##\nsteps', 1e6)).toEqual({ format: 'markdown', text: 'intro\n## Setup ##\nsteps', title: 'Setup' });
  });

  test.each([
    ['report.pdf', 'x', /report\.pdf: unsupported document type; supported extensions: \.txt, \.md/],
    ['broken.json', '{"a":', /broken\.json: not valid JSON/],
    ['blank.txt', '  \n ', /blank\.txt: has no text to index/],
    ['binary.txt', 'ab\u0000cd', /binary\.txt: not UTF-8 text/],
    ['big.txt', 'x'.repeat(11), /big\.txt: too large: 11 characters; the limit is 10/],
  ])('rejects %s with a clear reason', (key, content, message) => {
    expect(() => parseDocument(key, content, 10)).toThrow(MalformedDocumentError);
    expect(() => parseDocument(key, content, 10)).toThrow(message);
  });

  test('knows formats by extension, case-insensitively, and gives each key a stable id', () => {
    expect(documentFormat('A/B.HTM')).toBe('html');
    expect(documentFormat('noextension')).toBeUndefined();
    expect(documentId('b', 'k')).toBe(documentId('b', 'k'));
    expect(documentId('b', 'k')).not.toBe(documentId('b', 'k2'));
  });
});

describe('embeddings', () => {
  test('Titan v2 embeds one text per call with the index dimension', () => {
    const model = embeddingModel('amazon.titan-embed-text-v2:0')!;
    expect(embeddingRequestBody(model, ['hello'], 512, 'document')).toEqual({ inputText: 'hello', dimensions: 512, normalize: true });
    expect(embeddingBatches(model, ['a', 'b', 'c'])).toEqual([['a'], ['b'], ['c']]);
    expect(parseEmbeddingResponse(model, { embedding: [0.1, 0.2] }, 1, 2)).toEqual([[0.1, 0.2]]);
    expect(() => embeddingRequestBody(model, ['a', 'b'], 512, 'document')).toThrow(/embeds 1 to 1 texts per call; got 2/);
  });

  test('Cohere embeds up to 96 texts per call, as documents or as a query', () => {
    const model = embeddingModel('cohere.embed-english-v3')!;
    const texts = Array.from({ length: 200 }, (_, i) => `t${i}`);
    expect(embeddingBatches(model, texts).map((batch) => batch.length)).toEqual([96, 96, 8]);
    expect(embeddingRequestBody(model, ['q'], 1024, 'query')).toEqual({ texts: ['q'], input_type: 'search_query', truncate: 'END' });
    expect(embeddingRequestBody(model, ['d'], 1024, 'document')).toMatchObject({ input_type: 'search_document' });
    expect(() => parseEmbeddingResponse(model, { embeddings: [[1, 2]] }, 2, 2)).toThrow(/returned 1 embeddings for 2 texts/);
    expect(() => parseEmbeddingResponse(model, { embeddings: [[1, 2, 3]] }, 1, 2)).toThrow(/the index expects 2/);
  });

  test('the synth-time model table agrees with the functions on every supported model', () => {
    for (const modelId of SUPPORTED_EMBEDDING_MODELS) {
      const runtime = embeddingModel(modelId)!;
      const synth = EMBEDDING_MODELS.find((entry) => entry.pattern.test(modelId))!;
      expect({ dimensions: synth.dimensions, maxCharacters: synth.maxCharacters }).toEqual({ dimensions: runtime.dimensions, maxCharacters: runtime.maxCharacters });
    }
    expect(embeddingModel('openai.text-embedding-3')).toBeUndefined();
  });
});

describe('prompt rendering', () => {
  const template = 'Passages:\n{{context}}\n\nQuestion: {{ question }}';

  test('renders context and question as guard-content blocks qualified for contextual grounding', () => {
    const blocks = renderRagPromptBlocks(template, { context: '[1] a', question: 'why?' });
    expect(blocks).toEqual([
      { text: 'Passages:\n' },
      { guardContent: { text: { text: '[1] a', qualifiers: ['grounding_source'] } } },
      { text: '\n\nQuestion: ' },
      { guardContent: { text: { text: 'why?', qualifiers: ['query'] } } },
    ]);
  });

  test('the blocks read exactly as the rendered template, for any values', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (context, question) => {
        expect(blocksText(renderRagPromptBlocks(template, { context, question }))).toBe(renderTemplate(template, { context, question }));
      }),
    );
  });

  test('an unknown variable in a stored template fails with its name', () => {
    expect(() => renderRagPromptBlocks('{{context}} {{question}} {{tone}}', { context: '', question: '' })).toThrow(/unknown variable '\{\{tone\}\}'/);
    expect(() => renderTemplate('{{x}}', {})).toThrow(/no value for variable '\{\{x\}\}'/);
  });

  test('the synth-time check and the runtime parser find the same variables in any template', () => {
    const piece = fc.oneof(fc.string(), fc.constantFrom('{{context}}', '{{ question }}', '{{x}}', '{{', '}}', '{{a{b}}'));
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 8 }), (pieces) => {
        const text = pieces.join('');
        expect(promptTemplateVariables(text)).toEqual(templateVariables(text));
      }),
    );
    expect(checkPromptTemplate('{{question}} {{extra}}')).toEqual({ unknown: ['extra'], missing: ['context'] });
  });

  test('few-shot examples become earlier turns before the rendered template', () => {
    const { system, messages } = buildConverseMessages(
      { template, systemPrompt: 'Be brief.', fewShotExamples: [{ question: 'Q1', answer: 'A1' }] },
      { context: 'c', question: 'q' },
    );
    expect(system).toEqual([{ text: 'Be brief.' }]);
    expect(messages.map((message) => message.role)).toEqual(['user', 'assistant', 'user']);
    expect(messages[1].content).toEqual([{ text: 'A1' }]);
  });

  test('reads the prompt back from a stored CHAT version, and refuses one with a missing variable', () => {
    const stored = {
      defaultVariant: 'default',
      variants: [
        {
          name: 'default',
          templateConfiguration: {
            chat: {
              system: [{ text: 'sys' }],
              messages: [
                { role: 'user', content: [{ text: 'Q1' }] },
                { role: 'assistant', content: [{ text: 'A1' }] },
                { role: 'user', content: [{ text: template }] },
              ],
            },
          },
          inferenceConfiguration: { text: { maxTokens: 300, temperature: 0 } },
        },
      ],
    };
    expect(promptFromStored(stored, 'p')).toEqual({ template, systemPrompt: 'sys', fewShotExamples: [{ question: 'Q1', answer: 'A1' }], inference: { maxTokens: 300, temperature: 0 } });
    const broken = { variants: [{ templateConfiguration: { chat: { messages: [{ role: 'user', content: [{ text: 'only {{question}}' }] }] } } }] };
    expect(() => promptFromStored(broken, 'prompt X version 2')).toThrow('prompt X version 2: template variables: missing {{context}}');
  });
});

describe('retrieval', () => {
  const passage = (id: string, score: number, chunk = 0): RetrievedPassage => ({ id, score, document_id: `doc-${id}`, source_uri: `s3://b/${id}.md`, source_key: `${id}.md`, chunk_index: chunk, text: `text ${id}` });

  test.each([
    [{ question: '   ' }, 'question: must not be blank'],
    [{}, 'question: is required and must be a string'],
    [{ question: 'x'.repeat(11) }, 'question: is too long: 11 characters; the limit is 10'],
    [{ question: 'ok', topK: 3 }, 'topK: is not a field of the request'],
    [[], '(body): must be a JSON object'],
  ])('rejects %j with a message naming the field', (body, message) => {
    const check = checkRagRequest(body, 10);
    expect(check.ok).toBe(false);
    if (!check.ok) expect(`${check.field}: ${check.message}`).toContain(message);
  });

  test('keeps k-NN hits at or above the floor, best first, and drops hits without a source', () => {
    const hits = [
      { _id: 'a', _score: 0.5, _source: { text: 'a', source_key: 'a.md', chunk_index: 0 } },
      { _id: 'b', _score: 0.9, _source: { text: 'b', source_key: 'b.md', chunk_index: 1 } },
      { _id: 'c', _score: 0.2, _source: { text: 'c', source_key: 'c.md', chunk_index: 0 } },
      { _id: 'd', _score: 0.95 },
    ];
    expect(passagesAboveFloor(hits, 0.5).map((p) => [p.id, p.score])).toEqual([
      ['b', 0.9],
      ['a', 0.5],
    ]);
  });

  test('reciprocal-rank fusion ranks passages found by both searches first and keeps top-k', () => {
    const fused = reciprocalRankFusion([[passage('a', 0.9), passage('b', 0.8)], [passage('b', 12), passage('c', 10)]], 2);
    expect(fused.map((p) => p.id)).toEqual(['b', 'a']);
    expect(fused[0].score).toBeCloseTo(1 / 62 + 1 / 61);
  });

  test('fusion never returns more than top-k or a passage twice', () => {
    const list = fc.array(fc.constantFrom('a', 'b', 'c', 'd', 'e'), { maxLength: 5 }).map((ids) => [...new Set(ids)].map((id) => passage(id, 1)));
    fc.assert(
      fc.property(list, list, fc.integer({ min: 1, max: 6 }), (one, two, topK) => {
        const fused = reciprocalRankFusion([one, two], topK);
        expect(fused.length).toBe(Math.min(topK, new Set([...one, ...two].map((p) => p.id)).size));
        expect(new Set(fused.map((p) => p.id)).size).toBe(fused.length);
      }),
    );
  });

  test('numbers the passages in the context and cites the ones the answer refers to', () => {
    const passages = [passage('a', 0.9), passage('b', 0.8, 3)];
    expect(formatContext(passages)).toBe('[1] a.md (chunk 0)\ntext a\n\n[2] b.md (chunk 3)\ntext b');
    expect(buildCitations('Yes [2], and [2] again; not [7].', passages)).toEqual({
      citations: [{ marker: 2, documentId: 'doc-b', source: 's3://b/b.md', chunkIndex: 3, score: 0.8 }],
      explicit: true,
    });
    expect(buildCitations('No markers.', passages).citations.map((c) => c.marker)).toEqual([1, 2]);
  });

  test('maps throttling to 429, model timeouts to 504 and other failures to 502', () => {
    expect(classifyServiceError('bedrock', { name: 'ThrottlingException' }).statusCode).toBe(429);
    expect(classifyServiceError('opensearch', { meta: {}, statusCode: 429 }).statusCode).toBe(429);
    expect(classifyServiceError('bedrock', { name: 'ModelTimeoutException' }).statusCode).toBe(504);
    expect(classifyServiceError('bedrock', { name: 'AccessDeniedException' })).toEqual({ statusCode: 502, error: 'DependencyFailed', message: 'Bedrock call failed (AccessDeniedException)' });
  });

  test('tells a blocked question from a blocked answer from masked personal data', () => {
    expect(guardrailOutcome({ inputAssessment: { g: { topicPolicy: { topics: [{ name: 'x', action: 'BLOCKED' }] } } } })).toEqual({ kind: 'blocked', side: 'input' });
    expect(guardrailOutcome({ inputAssessment: { g: { contentPolicy: { filters: [{ action: 'NONE' }] } } }, outputAssessments: { g: [{ contextualGroundingPolicy: { filters: [{ action: 'BLOCKED' }] } }] } })).toEqual({
      kind: 'blocked',
      side: 'output',
    });
    expect(guardrailOutcome({ outputAssessments: { g: [{ sensitiveInformationPolicy: { piiEntities: [{ type: 'EMAIL', action: 'ANONYMIZED' }] } }] } })).toEqual({ kind: 'masked' });
    expect(guardrailOutcome(undefined)).toEqual({ kind: 'blocked', side: 'output' });
  });
});

describe('k-NN index requests', () => {
  const spec: KnnIndexSpec = { indexName: 'docs', dimension: 4, engine: 'faiss', spaceType: 'l2', shards: 1, replicas: 0, writerRoleArns: [], readerRoleArns: [] };

  test('creates a k-NN index with the vector settings and the chunk metadata fields', () => {
    expect(createIndexBody(spec)).toMatchObject({
      settings: { index: { knn: true, number_of_shards: 1, number_of_replicas: 0 } },
      mappings: { properties: { embedding: { type: 'knn_vector', dimension: 4, method: { engine: 'faiss', space_type: 'l2' } }, document_id: { type: 'keyword' } } },
    });
  });

  test('refuses to change the dimension in place, and adds fields that are missing', () => {
    const existing = createIndexBody(spec).mappings as { properties: Record<string, unknown> };
    expect(compareMappings(existing, spec)).toEqual({ kind: 'same' });
    expect(compareMappings(existing, { ...spec, dimension: 8 })).toMatchObject({ kind: 'conflict', reason: expect.stringContaining('cannot change dimension 4 -> 8 in place') });
    const { etag: _etag, ...withoutEtag } = existing.properties;
    expect(compareMappings({ properties: withoutEtag }, spec)).toEqual({ kind: 'missing-fields', properties: { etag: { type: 'keyword' } } });
  });

  test('names every bad property of a resource request', () => {
    expect(knnIndexSpecProblems({ ...spec, indexName: 'Docs', dimension: 0, engine: 'faiss', spaceType: 'cosinesimil', writerRoleArns: ['x'] })).toEqual([
      expect.stringMatching(/^IndexName:/),
      expect.stringMatching(/^Dimension:/),
      expect.stringMatching(/^SpaceType: the faiss engine supports l2, innerproduct/),
      'WriterRoleArns: must be a list of IAM role ARNs',
    ]);
  });
});

describe('function configuration', () => {
  const env = {
    OPENSEARCH_ENDPOINT: 'https://search',
    INDEX_NAME: 'docs',
    EMBEDDING_MODEL_ID: 'amazon.titan-embed-text-v2:0',
    EMBEDDING_DIMENSION: '1024',
    GENERATION_MODEL_ID: 'anthropic.claude-3-haiku-20240307-v1:0',
    TOP_K: '5',
    SCORE_FLOOR: '0.2',
    HYBRID: 'true',
    MAX_QUESTION_CHARACTERS: '2000',
    PROMPT_ARN: 'arn:aws:bedrock:us-east-1:123456789012:prompt/ABC',
    PROMPT_VERSION: '1',
    GUARDRAIL_ID: 'g',
    GUARDRAIL_VERSION: '1',
  };
  test('reads a complete environment', () => {
    expect(loadQueryConfig(env)).toMatchObject({ topK: 5, scoreFloor: 0.2, hybrid: true, prompt: { version: '1' } });
  });
  test('names the variable that is missing or wrong', () => {
    const { TOP_K: _topK, ...withoutTopK } = env;
    expect(() => loadQueryConfig(withoutTopK)).toThrow('TOP_K: is not set');
    expect(() => loadQueryConfig({ ...env, EMBEDDING_DIMENSION: '768' })).toThrow('EMBEDDING_DIMENSION: amazon.titan-embed-text-v2:0 returns 256 or 512 or 1024 dimensions; got 768');
  });
});
