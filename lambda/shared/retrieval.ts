// Retrieval and answer assembly of the RAG API: request validation, the OpenSearch query bodies, score
// floor and reciprocal-rank fusion for hybrid search, the context block of the prompt, citations, and the
// mapping of service errors to HTTP answers. Pure: no AWS imports.

/** What the index stores per chunk (the `_source` of a hit, without the vector). */
export interface ChunkSource {
  readonly document_id: string;
  readonly source_uri: string;
  readonly source_key: string;
  readonly chunk_index: number;
  readonly text: string;
  readonly title?: string;
}

export interface RetrievedPassage extends ChunkSource {
  /** The OpenSearch document id of the chunk. */
  readonly id: string;
  /** k-NN score (or the fused score in hybrid mode). */
  readonly score: number;
}

export interface SearchHit {
  readonly _id: string;
  readonly _score: number | null;
  readonly _source?: Partial<ChunkSource>;
}

export interface RagRequest {
  readonly question: string;
}

export type RequestCheck = { readonly ok: true; readonly request: RagRequest } | { readonly ok: false; readonly field: string; readonly message: string };

/** Validates a parsed request body: `{ "question": "..." }` with a non-blank question of at most `maxQuestionCharacters`. */
export function checkRagRequest(body: unknown, maxQuestionCharacters: number): RequestCheck {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, field: '(body)', message: 'must be a JSON object with a "question"' };
  }
  const record = body as Record<string, unknown>;
  const unknown = Object.keys(record).filter((key) => key !== 'question');
  if (unknown.length > 0) return { ok: false, field: unknown[0], message: 'is not a field of the request (only "question" is)' };
  const question = record.question;
  if (typeof question !== 'string') return { ok: false, field: 'question', message: 'is required and must be a string' };
  if (question.trim() === '') return { ok: false, field: 'question', message: 'must not be blank' };
  if (question.length > maxQuestionCharacters) {
    return { ok: false, field: 'question', message: `is too long: ${question.length} characters; the limit is ${maxQuestionCharacters}` };
  }
  return { ok: true, request: { question: question.trim() } };
}

const SOURCE_FIELDS = ['document_id', 'source_uri', 'source_key', 'chunk_index', 'text', 'title'];

/** The k-NN query for the `topK` nearest chunks of a question vector. */
export function knnQueryBody(field: string, vector: readonly number[], topK: number): Record<string, unknown> {
  return { size: topK, _source: SOURCE_FIELDS, query: { knn: { [field]: { vector, k: topK } } } };
}

/** The BM25 (full-text) query of hybrid search. */
export function bm25QueryBody(question: string, topK: number): Record<string, unknown> {
  return { size: topK, _source: SOURCE_FIELDS, query: { match: { text: { query: question } } } };
}

function toPassage(hit: SearchHit, score: number): RetrievedPassage | undefined {
  const source = hit._source;
  if (!source || typeof source.text !== 'string' || typeof source.source_key !== 'string' || typeof source.chunk_index !== 'number') return undefined;
  return {
    id: hit._id,
    score,
    document_id: source.document_id ?? '',
    source_uri: source.source_uri ?? '',
    source_key: source.source_key,
    chunk_index: source.chunk_index,
    text: source.text,
    ...(source.title ? { title: source.title } : {}),
  };
}

/** Passages of k-NN hits whose score reaches the floor, best first. */
export function passagesAboveFloor(hits: readonly SearchHit[], scoreFloor: number): RetrievedPassage[] {
  return hits
    .filter((hit) => typeof hit._score === 'number' && hit._score >= scoreFloor)
    .map((hit) => toPassage(hit, hit._score as number))
    .filter((passage): passage is RetrievedPassage => passage !== undefined)
    .sort((a, b) => b.score - a.score);
}

/** The constant of reciprocal-rank fusion (Cormack et al.): damps the weight of the very first ranks. */
export const RRF_K = 60;

/**
 * Reciprocal-rank fusion of ranked lists (k-NN above the floor, BM25): each passage scores the sum of
 * 1 / (RRF_K + rank) over the lists it appears in. Ties keep the first list's order. Returns the top `topK`.
 */
export function reciprocalRankFusion(lists: ReadonlyArray<readonly RetrievedPassage[]>, topK: number): RetrievedPassage[] {
  const fused = new Map<string, { passage: RetrievedPassage; score: number; firstSeen: number }>();
  let seen = 0;
  for (const list of lists) {
    list.forEach((passage, rank) => {
      const entry = fused.get(passage.id);
      const contribution = 1 / (RRF_K + rank + 1);
      if (entry) entry.score += contribution;
      else fused.set(passage.id, { passage, score: contribution, firstSeen: seen++ });
    });
  }
  return [...fused.values()]
    .sort((a, b) => b.score - a.score || a.firstSeen - b.firstSeen)
    .slice(0, topK)
    .map(({ passage, score }) => ({ ...passage, score }));
}

/** The `{{context}}` of the prompt: the passages numbered from 1, each with its source. */
export function formatContext(passages: readonly RetrievedPassage[]): string {
  return passages
    .map((passage, index) => `[${index + 1}] ${passage.title ? `${passage.title} — ` : ''}${passage.source_key} (chunk ${passage.chunk_index})\n${passage.text.trim()}`)
    .join('\n\n');
}

export interface Citation {
  /** The number the answer cites the passage by: `[n]`. */
  readonly marker: number;
  readonly documentId: string;
  readonly source: string;
  readonly chunkIndex: number;
  readonly score: number;
  readonly title?: string;
}

/**
 * Citations of an answer: the passages it refers to by `[n]`, in the order first cited. Markers outside
 * 1..passages.length are ignored. When the answer cites nothing, every passage given to the model is
 * returned, since the answer was generated from them.
 */
export function buildCitations(answer: string, passages: readonly RetrievedPassage[]): { citations: Citation[]; explicit: boolean } {
  const cited: number[] = [];
  for (const match of answer.matchAll(/\[(\d{1,3})\]/g)) {
    const marker = Number(match[1]);
    if (marker >= 1 && marker <= passages.length && !cited.includes(marker)) cited.push(marker);
  }
  const explicit = cited.length > 0;
  const markers = explicit ? cited : passages.map((_, index) => index + 1);
  const citations = markers.map((marker) => {
    const passage = passages[marker - 1];
    return {
      marker,
      documentId: passage.document_id,
      source: passage.source_uri || passage.source_key,
      chunkIndex: passage.chunk_index,
      score: passage.score,
      ...(passage.title ? { title: passage.title } : {}),
    };
  });
  return { citations, explicit };
}

/** An HTTP answer for a failed call to Bedrock or OpenSearch. */
export interface ServiceFailure {
  readonly statusCode: number;
  readonly error: string;
  readonly message: string;
}

/**
 * Maps an error of Bedrock (Converse, InvokeModel) or OpenSearch to what the caller sees: throttling is
 * 429 (retry later), a model timeout 504, anything else 502 (our dependency failed, not the request).
 */
export function classifyServiceError(service: 'bedrock' | 'opensearch', error: unknown): ServiceFailure {
  const record = (typeof error === 'object' && error !== null ? error : {}) as { name?: string; message?: string; statusCode?: number; $metadata?: { httpStatusCode?: number } };
  const name = record.name ?? 'Error';
  const status = record.statusCode ?? record.$metadata?.httpStatusCode;
  if (name === 'ThrottlingException' || name === 'ServiceQuotaExceededException' || name === 'TooManyRequestsException' || status === 429) {
    return { statusCode: 429, error: 'Throttled', message: `${service === 'bedrock' ? 'Bedrock' : 'OpenSearch'} is throttling requests; retry with backoff` };
  }
  if (name === 'ModelTimeoutException') {
    return { statusCode: 504, error: 'ModelTimeout', message: 'the model did not answer in time; retry' };
  }
  return { statusCode: 502, error: 'DependencyFailed', message: `${service === 'bedrock' ? 'Bedrock' : 'OpenSearch'} call failed (${name})` };
}

/** Whether a guardrail assessment (any policy, at any depth) reports an action of BLOCKED. */
export function assessmentBlocked(assessment: unknown): boolean {
  if (Array.isArray(assessment)) return assessment.some(assessmentBlocked);
  if (typeof assessment !== 'object' || assessment === null) return false;
  return Object.entries(assessment).some(([key, value]) => (key === 'action' && value === 'BLOCKED') || assessmentBlocked(value));
}

/** Whether any policy of an assessment (at any depth) reports an action of ANONYMIZED. */
function assessmentMasked(assessment: unknown): boolean {
  if (Array.isArray(assessment)) return assessment.some(assessmentMasked);
  if (typeof assessment !== 'object' || assessment === null) return false;
  return Object.entries(assessment).some(([key, value]) => (key === 'action' && value === 'ANONYMIZED') || assessmentMasked(value));
}

export type GuardrailOutcome = { readonly kind: 'blocked'; readonly side: 'input' | 'output' } | { readonly kind: 'masked' };

/**
 * What a guardrail did, from the `trace.guardrail` of a Converse response whose stopReason is
 * `guardrail_intervened`: it blocked the question (an input assessment BLOCKED), blocked the answer, or only
 * masked personal data (every intervention ANONYMIZED), in which case the masked answer can be returned.
 * Without a trace it counts as blocked on output, the safe reading.
 */
export function guardrailOutcome(trace: { inputAssessment?: Record<string, unknown>; outputAssessments?: Record<string, unknown> } | undefined): GuardrailOutcome {
  const input = Object.values(trace?.inputAssessment ?? {});
  const output = Object.values(trace?.outputAssessments ?? {});
  if (input.some(assessmentBlocked)) return { kind: 'blocked', side: 'input' };
  if (output.some(assessmentBlocked)) return { kind: 'blocked', side: 'output' };
  if ([...input, ...output].some(assessmentMasked)) return { kind: 'masked' };
  return { kind: 'blocked', side: 'output' };
}
