import { OpenSearchPartitionInstanceType } from '../lib/core/private/aws-enums';
import {
  GuardrailContentFilterType,
  GuardrailFilterStrength,
  GuardrailPiiEntityType,
  GuardrailSensitiveInformationAction,
} from '../lib/core/private/aws-enums';
import { z } from 'zod';
import { KNN_ENGINE_SPACE_TYPES, KnnEngine, KnnSpaceType } from '../lib/genai/knn-index';
import { generationModelProblem, validateEmbeddingModel } from '../lib/genai/private/bedrock-models';
import { checkPromptTemplate, RAG_PROMPT_VARIABLES } from '../lib/genai/prompt-template';

const instanceType = z
  .string()
  .refine((value) => (Object.values(OpenSearchPartitionInstanceType) as string[]).includes(value), 'must be an OpenSearch Service instance type, e.g. t3.medium.search or r6g.large.search');
const enumOf = (values: Record<string, string>) => z.enum(Object.values(values) as [string, ...string[]]);

/**
 * The RAG pattern (retrieval-augmented generation with Bedrock and OpenSearch, prompt management and
 * guardrails): one knowledge base, its ingestion and its question-answering API per environment.
 */
export const ragSchema = z
  .strictObject({
    /** The OpenSearch Service domain that holds the vectors. */
    domain: z.strictObject({
      engineVersion: z.string().regex(/^\d+\.\d+$/, "must be an OpenSearch version such as '2.19'").default('2.19'),
      dataNodes: z.number().int().min(1).max(80).default(1),
      dataNodeInstanceType: instanceType.default('t3.medium.search'),
      /** Dedicated master nodes: 3 or 5, or none. */
      masterNodes: z.union([z.literal(3), z.literal(5)]).optional(),
      masterNodeInstanceType: instanceType.optional(),
      ebsVolumeSizeGiB: z.number().int().min(10).max(16384).default(10),
      /** Zones the data nodes spread over (2 or 3 is multi-AZ). */
      availabilityZoneCount: z.union([z.literal(1), z.literal(2), z.literal(3)]).default(1),
    }),
    index: z.strictObject({
      name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,254}$/, "must be lowercase letters, digits, '-' or '_'").default('documents'),
      dimension: z.number().int().min(1).max(16000),
      engine: z.enum(Object.values(KnnEngine) as [string, ...string[]]).default(KnnEngine.FAISS),
      spaceType: z.enum(Object.values(KnnSpaceType) as [string, ...string[]]).default(KnnSpaceType.L2),
      replicas: z.number().int().min(0).default(0),
    }),
    chunking: z.strictObject({
      /** Characters per chunk. */
      size: z.number().int().min(100).max(20000).default(1000),
      /** Characters shared by consecutive chunks. */
      overlap: z.number().int().min(0).default(150),
    }),
    /** Key prefix of the documents in the knowledge base bucket. */
    documentsPrefix: z.string().regex(/^([^/].*\/)?$/, "must end with '/' and not start with one").default('documents/'),
    embeddingModelId: z.string().default('amazon.titan-embed-text-v2:0'),
    generationModelId: z.string().superRefine((modelId, ctx) => {
      const problem = generationModelProblem(modelId);
      if (problem) ctx.addIssue({ code: 'custom', message: problem.replace(/^generationModelId: /, '') });
    }),
    retrieval: z.strictObject({
      topK: z.number().int().min(1).max(100).default(5),
      scoreFloor: z.number().min(0).default(0),
      hybrid: z.boolean().default(false),
      maxQuestionCharacters: z.number().int().min(1).max(20000).default(2000),
    }),
    prompt: z.strictObject({
      /** The user turn, with {{context}} and {{question}}. */
      template: z.string().min(1),
      systemPrompt: z.string().min(1),
      fewShotExamples: z.array(z.strictObject({ question: z.string().min(1), answer: z.string().min(1) })).default([]),
      /** The version this environment serves; a new label publishes the current template as a new version. */
      pinnedVersion: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/),
      maxTokens: z.number().int().min(1).default(1024),
      temperature: z.number().min(0).max(1).default(0),
    }),
    guardrail: z.strictObject({
      contentFilters: z
        .array(z.strictObject({ type: enumOf(GuardrailContentFilterType), inputStrength: enumOf(GuardrailFilterStrength), outputStrength: enumOf(GuardrailFilterStrength) }))
        .optional(),
      deniedTopics: z.array(z.strictObject({ name: z.string().min(1).max(100), definition: z.string().min(1).max(200), examples: z.array(z.string()).max(5).default([]) })).default([]),
      piiEntities: z.array(z.strictObject({ type: enumOf(GuardrailPiiEntityType), action: enumOf(GuardrailSensitiveInformationAction) })).optional(),
      groundingThreshold: z.number().min(0).max(0.99).default(0.75),
      relevanceThreshold: z.number().min(0).max(0.99).default(0.75),
      interventionsAlarmThreshold: z.number().int().min(1).default(10),
    }),
  })
  .superRefine((rag, ctx) => {
    if (rag.chunking.overlap >= rag.chunking.size) {
      ctx.addIssue({ code: 'custom', path: ['chunking', 'overlap'], message: `must be below chunking.size (${rag.chunking.size})` });
    }
    const modelProblem = validateEmbeddingModel(rag.embeddingModelId, rag.index.dimension, rag.chunking.size);
    if (modelProblem) {
      const [field, ...rest] = modelProblem.split(': ');
      ctx.addIssue({ code: 'custom', path: field === 'chunkSize' ? ['chunking', 'size'] : ['embeddingModelId'], message: rest.join(': ') });
    }
    const { unknown, missing } = checkPromptTemplate(rag.prompt.template);
    if (unknown.length > 0 || missing.length > 0) {
      const problems = [...unknown.map((name) => `unknown variable {{${name}}}`), ...missing.map((name) => `missing variable {{${name}}}`)];
      ctx.addIssue({ code: 'custom', path: ['prompt', 'template'], message: `${problems.join(', ')}; the RAG API fills in ${RAG_PROMPT_VARIABLES.map((name) => `{{${name}}}`).join(' and ')}` });
    }
    const spaces: readonly string[] = KNN_ENGINE_SPACE_TYPES[rag.index.engine as KnnEngine];
    if (!spaces.includes(rag.index.spaceType)) {
      ctx.addIssue({ code: 'custom', path: ['index', 'spaceType'], message: `the ${rag.index.engine} engine supports ${spaces.join(', ')}` });
    }
    const { domain } = rag;
    if (domain.masterNodeInstanceType !== undefined && domain.masterNodes === undefined) {
      ctx.addIssue({ code: 'custom', path: ['domain', 'masterNodeInstanceType'], message: 'needs domain.masterNodes' });
    }
    if (domain.availabilityZoneCount > 1 && domain.dataNodes % domain.availabilityZoneCount !== 0) {
      ctx.addIssue({ code: 'custom', path: ['domain', 'dataNodes'], message: `must be a multiple of domain.availabilityZoneCount (${domain.availabilityZoneCount})` });
    }
    if (rag.index.replicas > domain.dataNodes - 1) {
      ctx.addIssue({ code: 'custom', path: ['index', 'replicas'], message: `${rag.index.replicas} replicas need at least ${rag.index.replicas + 1} data nodes; domain.dataNodes is ${domain.dataNodes}` });
    }
    rag.guardrail.contentFilters?.forEach((filter, index) => {
      if (filter.type === 'PROMPT_ATTACK' && filter.outputStrength !== 'NONE') {
        ctx.addIssue({ code: 'custom', path: ['guardrail', 'contentFilters', index, 'outputStrength'], message: 'PROMPT_ATTACK only applies to input; set NONE' });
      }
    });
  });

export type RagConfig = z.output<typeof ragSchema>;
