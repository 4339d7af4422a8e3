// API Gateway (REST, proxy integration, IAM auth) handler of POST /query, the retrieval and generation
// API of the RAG pattern:
//   validate `{ "question": "..." }` (400 naming the field: missing, blank, too long, unknown field)
//   -> embed the question (Bedrock InvokeModel) -> k-NN search (top-k, score floor), and with hybrid on a
//   BM25 search fused by reciprocal rank -> 404 NoRelevantDocuments when nothing reaches the floor (the
//   model is not asked to answer from nothing)
//   -> the prompt of the pinned Prompt Management version (read once per execution environment) rendered
//   with the passages and the question -> Bedrock Converse with the guardrail on input and output
//   -> 200 { answer, citations (document and chunk), promptVersion, guardrail: 'none' }
// Errors: guardrail intervention -> 422 GuardrailIntervened with the guardrail's message and whether it
// stopped the question (input) or the answer (output), except when it only masked personal data: then the
// masked answer is returned (200, guardrail: 'masked'); throttling (Bedrock or OpenSearch) -> 429; model
// timeout -> 504; other dependency failures -> 502; a broken configuration -> 500 naming the variable.
//
// Environment: see lambda/shared/rag-config.ts (loadQueryConfig); POWERTOOLS_METRICS_NAMESPACE;
// AWS_ENDPOINT_URL_BEDROCK_RUNTIME / AWS_ENDPOINT_URL_BEDROCK_AGENT / AWS_REGION: read by the SDK itself.
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { BedrockAgentClient, GetPromptCommand } from '@aws-sdk/client-bedrock-agent';
import { BedrockRuntimeClient, ConverseCommand, type ConverseCommandOutput, type Message, type SystemContentBlock } from '@aws-sdk/client-bedrock-runtime';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { embedTexts } from '../genai-io/bedrock';
import { openSearchClient } from '../genai-io/opensearch';
import { VECTOR_FIELD } from '../shared/knn-index';
import { buildConverseMessages } from '../shared/prompt';
import { loadQueryConfig, promptFromStored, RagConfigError, type LoadedPrompt, type QueryConfig, type StoredPrompt } from '../shared/rag-config';
import {
  bm25QueryBody,
  buildCitations,
  checkRagRequest,
  classifyServiceError,
  formatContext,
  guardrailOutcome,
  knnQueryBody,
  passagesAboveFloor,
  reciprocalRankFusion,
  type RetrievedPassage,
  type SearchHit,
} from '../shared/retrieval';

const SERVICE_NAME = process.env.POWERTOOLS_SERVICE_NAME ?? 'rag-query';
const logger = new Logger({ serviceName: SERVICE_NAME });
const metrics = new Metrics({ serviceName: SERVICE_NAME });
const bedrock = new BedrockRuntimeClient({});
const bedrockAgent = new BedrockAgentClient({});

let config: QueryConfig | undefined;
let prompt: Promise<LoadedPrompt> | undefined;

function json(statusCode: number, body: Record<string, unknown>): APIGatewayProxyResult {
  return { statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

class Failure extends Error {
  constructor(
    readonly response: APIGatewayProxyResult,
    readonly metric?: string,
  ) {
    super('request failed');
  }
}

function fail(statusCode: number, error: string, message: string, extra: Record<string, unknown> = {}, metric?: string): never {
  throw new Failure(json(statusCode, { error, message, ...extra }), metric);
}

async function loadPrompt(cfg: QueryConfig): Promise<LoadedPrompt> {
  const response = await bedrockAgent.send(new GetPromptCommand({ promptIdentifier: cfg.prompt.arn, promptVersion: cfg.prompt.version }));
  return promptFromStored(response as StoredPrompt, `prompt ${cfg.prompt.arn} version ${cfg.prompt.version}`);
}

async function search(cfg: QueryConfig, body: Record<string, unknown>): Promise<SearchHit[]> {
  try {
    const response = await openSearchClient(cfg.endpoint).search<SearchHit>(cfg.indexName, body);
    return response.hits?.hits ?? [];
  } catch (error) {
    const failure = classifyServiceError('opensearch', error);
    logger.error('search failed', { error: (error as Error).message });
    return fail(failure.statusCode, failure.error, failure.message, {}, failure.statusCode === 429 ? 'Throttled' : 'DependencyErrors');
  }
}

async function retrieve(cfg: QueryConfig, question: string): Promise<RetrievedPassage[]> {
  let vector: number[];
  try {
    [vector] = await embedTexts(bedrock, cfg.model, [question], cfg.dimension, 'query');
  } catch (error) {
    const failure = classifyServiceError('bedrock', error);
    logger.error('embedding the question failed', { error: (error as Error).message });
    return fail(failure.statusCode, failure.error, failure.message, {}, failure.statusCode === 429 ? 'Throttled' : 'DependencyErrors');
  }
  const knnHits = await search(cfg, knnQueryBody(VECTOR_FIELD, vector, cfg.topK));
  const vectorPassages = passagesAboveFloor(knnHits, cfg.scoreFloor);
  if (!cfg.hybrid) return vectorPassages.slice(0, cfg.topK);
  const textHits = await search(cfg, bm25QueryBody(question, cfg.topK));
  // BM25 scores are unbounded and not comparable to the floor: text hits join by rank only.
  const textPassages = passagesAboveFloor(textHits, 0);
  return reciprocalRankFusion([vectorPassages, textPassages], cfg.topK);
}

async function answer(cfg: QueryConfig, question: string): Promise<APIGatewayProxyResult> {
  const passages = await retrieve(cfg, question);
  if (passages.length === 0) {
    return fail(404, 'NoRelevantDocuments', `no indexed passage reaches the relevance floor (score >= ${cfg.scoreFloor}); the question was not sent to the model`, {}, 'EmptyRetrievals');
  }
  if (prompt === undefined) {
    prompt = loadPrompt(cfg);
    prompt.catch(() => (prompt = undefined));
  }
  const loaded = await prompt;
  const { system, messages } = buildConverseMessages(loaded, { context: formatContext(passages), question });
  let response: ConverseCommandOutput;
  try {
    response = await bedrock.send(
      new ConverseCommand({
        modelId: cfg.generationModelId,
        system: system as SystemContentBlock[],
        messages: messages as Message[],
        inferenceConfig: loaded.inference,
        guardrailConfig: { guardrailIdentifier: cfg.guardrail.id, guardrailVersion: cfg.guardrail.version, trace: 'enabled' },
      }),
    );
  } catch (error) {
    const failure = classifyServiceError('bedrock', error);
    logger.error('Converse failed', { error: (error as Error).message, name: (error as Error).name });
    return fail(failure.statusCode, failure.error, failure.message, {}, failure.statusCode === 429 ? 'Throttled' : 'DependencyErrors');
  }
  const text = (response.output?.message?.content ?? []).map((block) => ('text' in block && typeof block.text === 'string' ? block.text : '')).join('');
  let guardrail: 'none' | 'masked' = 'none';
  if (response.stopReason === 'guardrail_intervened') {
    const outcome = guardrailOutcome(response.trace?.guardrail as Parameters<typeof guardrailOutcome>[0]);
    if (outcome.kind === 'blocked') {
      logger.warn('guardrail blocked the request', { side: outcome.side });
      return fail(422, 'GuardrailIntervened', text || 'the guardrail blocked this request', { guardrail: 'intervened', side: outcome.side }, 'GuardrailInterventions');
    }
    // Personal data was masked: the answer stands, with the masks in it.
    guardrail = 'masked';
    metrics.addMetric('GuardrailMasks', MetricUnit.Count, 1);
  }
  const { citations, explicit } = buildCitations(text, passages);
  return json(200, {
    answer: text,
    citations,
    citationsExplicit: explicit,
    promptVersion: cfg.prompt.version,
    modelId: cfg.generationModelId,
    guardrail,
    usage: response.usage ?? {},
  });
}

export async function handler(event: APIGatewayProxyEvent, context?: Context): Promise<APIGatewayProxyResult> {
  if (context !== undefined) logger.addContext(context);
  let response: APIGatewayProxyResult;
  try {
    if (config === undefined) config = loadQueryConfig(process.env);
    const cfg = config;
    let body: unknown;
    try {
      const raw = event.isBase64Encoded && event.body ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
      body = JSON.parse(raw ?? '');
    } catch {
      return json(400, { error: 'BadRequest', message: '(body): must be JSON: { "question": "..." }' });
    }
    const check = checkRagRequest(body, cfg.maxQuestionCharacters);
    if (!check.ok) return json(400, { error: 'BadRequest', message: `${check.field}: ${check.message}` });
    response = await answer(cfg, check.request.question);
    metrics.addMetric('Answers', MetricUnit.Count, 1);
  } catch (error) {
    if (error instanceof Failure) {
      if (error.metric) metrics.addMetric(error.metric, MetricUnit.Count, 1);
      response = error.response;
    } else if (error instanceof RagConfigError) {
      logger.error('invalid function configuration', { error: error.message });
      response = json(500, { error: 'Misconfigured', message: error.message });
    } else {
      logger.error('unexpected failure', { error: (error as Error).message, name: (error as Error).name });
      const failure = classifyServiceError('bedrock', error);
      response = json(failure.statusCode, { error: failure.error, message: failure.message });
    }
  }
  try {
    metrics.publishStoredMetrics();
  } catch {
    // Metrics must never fail the request.
  }
  return response;
}
