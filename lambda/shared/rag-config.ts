// What the RAG functions read from their environment, validated once, and the prompt read from a pinned
// Bedrock Prompt Management version. Pure: no AWS imports.
import * as z from './zod';
import { embeddingModel, type EmbeddingModel } from './embeddings';
import { RAG_PROMPT_VARIABLES, templateVariables, type FewShotExample, type RagPromptConfig } from './prompt';

/** A function configuration that cannot work; the message names the variable. */
export class RagConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RagConfigError';
  }
}

// `z.int()` used as a check, as classic zod's `.int()` does: an integer after coercion.
const positiveInt = z.coerce.number().check(z.int(), z.positive());

const commonSchema = z.object({
  OPENSEARCH_ENDPOINT: z.string().check(z.minLength(1)),
  INDEX_NAME: z.string().check(z.regex(/^[a-z0-9][a-z0-9_-]*$/)),
  EMBEDDING_MODEL_ID: z.string().check(z.minLength(1)),
  EMBEDDING_DIMENSION: positiveInt,
});

const ingestionSchema = z.extend(commonSchema, {
  CHUNK_SIZE: positiveInt,
  CHUNK_OVERLAP: z.coerce.number().check(z.int(), z.minimum(0)),
  MAX_DOCUMENT_BYTES: z._default(positiveInt, 10 * 1024 * 1024),
});

const querySchema = z.extend(commonSchema, {
  GENERATION_MODEL_ID: z.string().check(z.minLength(1)),
  TOP_K: positiveInt.check(z.maximum(100)),
  SCORE_FLOOR: z.coerce.number().check(z.minimum(0)),
  HYBRID: z.pipe(z.enum(['true', 'false']), z.transform((value: 'true' | 'false') => value === 'true')),
  MAX_QUESTION_CHARACTERS: positiveInt,
  PROMPT_ARN: z.string().check(z.minLength(1)),
  PROMPT_VERSION: z.string().check(z.regex(/^\d+$/)),
  GUARDRAIL_ID: z.string().check(z.minLength(1)),
  GUARDRAIL_VERSION: z.string().check(z.regex(/^(\d+|DRAFT)$/)),
});

function parseEnv<S extends z.ZodMiniType>(schema: S, env: Readonly<Record<string, string | undefined>>): z.output<S> {
  const result = schema.safeParse(env);
  if (!result.success) {
    const issue = result.error.issues[0];
    const name = String(issue.path[0]);
    throw new RagConfigError(`${name}: ${env[name] === undefined ? 'is not set' : `${issue.message} (got '${env[name]}')`}`);
  }
  return result.data;
}

function resolveModel(env: { EMBEDDING_MODEL_ID: string; EMBEDDING_DIMENSION: number }): EmbeddingModel {
  const model = embeddingModel(env.EMBEDDING_MODEL_ID);
  if (model === undefined) throw new RagConfigError(`EMBEDDING_MODEL_ID: '${env.EMBEDDING_MODEL_ID}' is not a supported embedding model`);
  if (!model.dimensions.includes(env.EMBEDDING_DIMENSION)) {
    throw new RagConfigError(`EMBEDDING_DIMENSION: ${env.EMBEDDING_MODEL_ID} returns ${model.dimensions.join(' or ')} dimensions; got ${env.EMBEDDING_DIMENSION}`);
  }
  return model;
}

export interface IngestionConfig {
  readonly endpoint: string;
  readonly indexName: string;
  readonly model: EmbeddingModel;
  readonly dimension: number;
  readonly chunking: { readonly size: number; readonly overlap: number };
  readonly maxDocumentBytes: number;
}

export function loadIngestionConfig(env: Readonly<Record<string, string | undefined>>): IngestionConfig {
  const parsed = parseEnv(ingestionSchema, env);
  if (parsed.CHUNK_OVERLAP >= parsed.CHUNK_SIZE) throw new RagConfigError(`CHUNK_OVERLAP: must be below CHUNK_SIZE (${parsed.CHUNK_SIZE}); got ${parsed.CHUNK_OVERLAP}`);
  return {
    endpoint: parsed.OPENSEARCH_ENDPOINT,
    indexName: parsed.INDEX_NAME,
    model: resolveModel(parsed),
    dimension: parsed.EMBEDDING_DIMENSION,
    chunking: { size: parsed.CHUNK_SIZE, overlap: parsed.CHUNK_OVERLAP },
    maxDocumentBytes: parsed.MAX_DOCUMENT_BYTES,
  };
}

export interface QueryConfig {
  readonly endpoint: string;
  readonly indexName: string;
  readonly model: EmbeddingModel;
  readonly dimension: number;
  readonly generationModelId: string;
  readonly topK: number;
  readonly scoreFloor: number;
  readonly hybrid: boolean;
  readonly maxQuestionCharacters: number;
  readonly prompt: { readonly arn: string; readonly version: string };
  readonly guardrail: { readonly id: string; readonly version: string };
}

export function loadQueryConfig(env: Readonly<Record<string, string | undefined>>): QueryConfig {
  const parsed = parseEnv(querySchema, env);
  return {
    endpoint: parsed.OPENSEARCH_ENDPOINT,
    indexName: parsed.INDEX_NAME,
    model: resolveModel(parsed),
    dimension: parsed.EMBEDDING_DIMENSION,
    generationModelId: parsed.GENERATION_MODEL_ID,
    topK: parsed.TOP_K,
    scoreFloor: parsed.SCORE_FLOOR,
    hybrid: parsed.HYBRID,
    maxQuestionCharacters: parsed.MAX_QUESTION_CHARACTERS,
    prompt: { arn: parsed.PROMPT_ARN, version: parsed.PROMPT_VERSION },
    guardrail: { id: parsed.GUARDRAIL_ID, version: parsed.GUARDRAIL_VERSION },
  };
}

/** A prompt version as GetPrompt returns it (the fields the RAG API reads). */
export interface StoredPrompt {
  readonly variants?: ReadonlyArray<{
    readonly name?: string;
    readonly templateType?: string;
    readonly templateConfiguration?: {
      readonly chat?: {
        readonly system?: ReadonlyArray<{ readonly text?: string }>;
        readonly messages?: ReadonlyArray<{ readonly role?: string; readonly content?: ReadonlyArray<{ readonly text?: string }> }>;
      };
    };
    readonly inferenceConfiguration?: { readonly text?: { readonly maxTokens?: number; readonly temperature?: number; readonly topP?: number } };
  }>;
  readonly defaultVariant?: string;
}

export interface LoadedPrompt extends RagPromptConfig {
  readonly inference: { readonly maxTokens?: number; readonly temperature?: number; readonly topP?: number };
}

/**
 * Reads the RAG prompt from a stored prompt version (lib/genai/prompt-template.ts writes it): a CHAT
 * template whose system block is the system prompt, whose earlier user/assistant pairs are the few-shot
 * examples and whose last user message is the template with `{{context}}` and `{{question}}`.
 */
export function promptFromStored(stored: StoredPrompt, source: string): LoadedPrompt {
  const variant = stored.variants?.find((candidate) => candidate.name === stored.defaultVariant) ?? stored.variants?.[0];
  const chat = variant?.templateConfiguration?.chat;
  if (!chat || !chat.messages || chat.messages.length === 0) throw new RagConfigError(`${source}: is not a CHAT prompt with messages`);
  const text = (message: { content?: ReadonlyArray<{ text?: string }> }) => (message.content ?? []).map((block) => block.text ?? '').join('');
  const messages = chat.messages;
  const last = messages[messages.length - 1];
  if (last.role !== 'user') throw new RagConfigError(`${source}: the last message must be the user template`);
  const template = text(last);
  const variables = templateVariables(template);
  const unknown = variables.filter((name) => !(RAG_PROMPT_VARIABLES as readonly string[]).includes(name));
  const missing = RAG_PROMPT_VARIABLES.filter((name) => !variables.includes(name));
  if (unknown.length > 0 || missing.length > 0) {
    throw new RagConfigError(`${source}: template variables: ${[...unknown.map((name) => `unknown {{${name}}}`), ...missing.map((name) => `missing {{${name}}}`)].join(', ')}`);
  }
  const fewShotExamples: FewShotExample[] = [];
  for (let i = 0; i < messages.length - 1; i += 2) {
    const question = messages[i];
    const answer = i + 1 < messages.length - 1 ? messages[i + 1] : undefined;
    if (question.role !== 'user' || answer?.role !== 'assistant' || answer === undefined) throw new RagConfigError(`${source}: few-shot messages must alternate user and assistant`);
    fewShotExamples.push({ question: text(question), answer: text(answer) });
  }
  return {
    template,
    systemPrompt: (chat.system ?? []).map((block) => block.text ?? '').join('\n'),
    fewShotExamples,
    inference: variant?.inferenceConfiguration?.text ?? {},
  };
}
