// The Lambda code validates with zod/mini, which registers no locale: every message zod writes itself
// would be a bare "Invalid input" unless lambda/shared/zod.ts registers the English one. This file
// imports nothing but the Lambda modules (no classic zod, which would register English on its own),
// so each message below comes from that registration, and is the text classic zod wrote before.
import { parseBaseline } from '../../../lambda/shared/drift';
import { parseOutcomeRequest } from '../../../lambda/shared/experiments';
import { loadFeatureGroups } from '../../../lambda/shared/features';
import { loadRoutingTable, parseRequest } from '../../../lambda/shared/inference';
import { loadQueryConfig } from '../../../lambda/shared/rag-config';
import { catchError } from '../../support/assertions';

const queryEnv = {
  OPENSEARCH_ENDPOINT: 'https://search.example.com',
  INDEX_NAME: 'docs',
  EMBEDDING_MODEL_ID: 'amazon.titan-embed-text-v2:0',
  EMBEDDING_DIMENSION: '1024',
  GENERATION_MODEL_ID: 'anthropic.claude-3-haiku-20240307-v1:0',
  TOP_K: '5',
  SCORE_FLOOR: '0.2',
  HYBRID: 'true',
  MAX_QUESTION_CHARACTERS: '500',
  PROMPT_ARN: 'arn:aws:bedrock:us-east-1:123456789012:prompt/ABCDEFGHIJ',
  PROMPT_VERSION: '3',
  GUARDRAIL_ID: 'gr-1',
  GUARDRAIL_VERSION: 'DRAFT',
};

describe('zod/mini reports in English once lambda/shared/zod.ts is loaded', () => {
  test.each<[string, () => unknown, string]>([
    ['an inference request whose entity is not an object', () => parseRequest('{"payload":{},"entity":5}'), 'entity: Invalid input: expected object, received number'],
    ['a body that is not an object', () => parseRequest('[1,2]'), 'body: Invalid input: expected object, received array'],
    [
      'a route without its endpoint name',
      () => loadRoutingTable('{"m":{"variants":{"v":{"modelVersion":"1"}}}}'),
      'MODEL_ROUTES: m.endpointName: Invalid input: expected string, received undefined',
    ],
    [
      'a feature group whose feature is not an object',
      () => loadFeatureGroups('[{"name":"g","description":"d","owner":"o","recordIdentifier":"id","eventTime":"ts","features":[5]}]'),
      'FEATURE_GROUPS: [0].features[0]: Invalid input: expected object, received number',
    ],
    ['an outcome that is not an object', () => parseOutcomeRequest('{"predictionId":"p","outcome":5}'), 'outcome: Invalid input: expected object, received number'],
    ['a baseline of another version', () => parseBaseline({ version: 2, features: {}, columns: ['a'] }), 'version: Invalid input: expected 1'],
    ['a TOP_K above its maximum', () => loadQueryConfig({ ...queryEnv, TOP_K: '500' }), "TOP_K: Too big: expected number to be <=100 (got '500')"],
    ['a TOP_K that is not an integer', () => loadQueryConfig({ ...queryEnv, TOP_K: '2.5' }), "TOP_K: Invalid input: expected int, received number (got '2.5')"],
    ['a HYBRID that is neither true nor false', () => loadQueryConfig({ ...queryEnv, HYBRID: 'yes' }), `HYBRID: Invalid option: expected one of "true"|"false" (got 'yes')`],
  ])('%s', (_name, run, message) => {
    expect((catchError(run) as Error).message).toBe(message);
  });
});
