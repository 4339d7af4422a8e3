import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { z } from 'zod';
import { parseEcrImageUri } from '../lib/core/sagemaker-execution-role';
import { lifecycleSchema } from './lifecycle-schema';
import { checkFeatureGroupDefinition, type FeatureGroupDefinition } from '../lib/features/feature-definition';
import { checkEndpointSpec, formatPath, MODEL_NAME_PATTERN, MODEL_NAME_RULE, MODEL_VERSION_PATTERN, MODEL_VERSION_RULE } from '../lib/serving/private/variant-rules';
import { ragSchema } from './rag-schema';
import { checkComposite, compositeSchema } from './composites-schema';
import { checkModelMonitor, modelMonitorSchema } from './model-monitor';

/**
 * The typed, validated configuration of one environment of the blueprint. `loadConfig` parses a raw
 * object with this schema before any construct is built, so a bad value stops `cdk synth` with the
 * field's path and what was expected, e.g. `models[0].variants[1].weight: must be a finite number >= 0; got -1`.
 */

export const ENVIRONMENT_NAMES = ['dev', 'staging', 'prod'] as const;
export type EnvironmentName = (typeof ENVIRONMENT_NAMES)[number];

/**
 * Each model family gets the stack `MlPlatform-<env>-<family>`; these names belong to the shared
 * stacks (lib/stacks/platform.ts), in any case.
 */
const RESERVED_FAMILY_NAMES: readonly string[] = ['foundation', 'features', 'serving', 'lifecycle', 'experiments', 'monitoring', 'rag', 'observability'];

const LOG_RETENTION_DAYS = Object.values(RetentionDays).filter((value): value is number => typeof value === 'number' && value > 0);

const S3_URI = /^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\/.+$/;

const autoscalingSchema = z.strictObject({
  minCapacity: z.number(),
  maxCapacity: z.number(),
  targetInvocationsPerInstance: z.number(),
  scaleInCooldownSeconds: z.number().default(300),
  scaleOutCooldownSeconds: z.number().default(60),
});

const capacitySchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('instance'),
    instanceType: z.string(),
    initialInstanceCount: z.number().default(1),
    autoscaling: autoscalingSchema.optional(),
  }),
  z.strictObject({
    kind: z.literal('serverless'),
    memorySizeInMb: z.number(),
    maxConcurrency: z.number(),
    provisionedConcurrency: z.number().optional(),
  }),
]);

const modelVersionSchema = z.strictObject({
  /** Version label recorded in tags and returned by the inference API with each prediction. */
  version: z.string().regex(MODEL_VERSION_PATTERN, MODEL_VERSION_RULE),
  /** ECR image URI, pinned by tag or digest. */
  image: z
    .string()
    .refine((uri) => parseEcrImageUri(uri) !== undefined, 'must be an ECR image URI: <account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag> or @sha256:<digest>'),
  /** Model artifact: a key in the platform's model-artifact bucket, or a full S3 URI elsewhere. */
  modelData: z
    .union([
      z.strictObject({ key: z.string().min(1).regex(/^[^/].*\.tar\.gz$/, 'must be an object key ending in .tar.gz, without a leading /') }),
      z.strictObject({ s3Uri: z.string().regex(S3_URI, 'must be an s3://bucket/key URI') }),
    ])
    .optional(),
  environment: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,1023}$/), z.string().max(1024)).default({}),
});

const variantSchema = z.strictObject({
  name: z.string(),
  weight: z.number().default(1),
  model: modelVersionSchema,
  capacity: capacitySchema,
});

const shadowVariantSchema = z.strictObject({
  name: z.string(),
  samplingPercentage: z.number().default(100),
  model: modelVersionSchema,
  capacity: capacitySchema,
});

const alarmThresholdsSchema = z.strictObject({
  /** Page when the 5xx error rate of any variant exceeds this percentage of invocations. */
  error5xxRatePercent: z.number().positive().max(100).default(1),
  /** Warn when p99 model latency of any variant exceeds this many milliseconds. */
  modelLatencyP99Ms: z.number().positive().default(1000),
  /** Warn when the 4xx error rate of any variant exceeds this percentage of invocations. */
  error4xxRatePercent: z.number().positive().max(100).default(5),
  /** Warn when invocations or p99 latency leave the band CloudWatch anomaly detection learnt. */
  anomalyDetection: z.boolean().default(false),
  /** Page once per incident (a composite alarm over the critical symptoms) instead of once per symptom. */
  pageOncePerIncident: z.boolean().default(false),
});

const deploymentGuardrailsSchema = z.strictObject({
  /** How SageMaker moves traffic to a new model version: canary or linear with bakes, or all at once. */
  mode: z.enum(['all-at-once', 'canary', 'linear']),
  /** canary: share of capacity that takes traffic first; linear: share moved per step (1-99). */
  percent: z.number().int().min(1).max(99).optional(),
  /** Bake between steps, watching the endpoint's alarms (0-60). */
  waitMinutes: z.number().int().min(0).max(60).default(10),
  /** How long the old fleet stays up after the shift, for a fast manual rollback. */
  terminationWaitMinutes: z.number().int().min(0).max(60).default(10),
});

const experimentsSchema = z.strictObject({
  /** Keep each caller (callerId) on one variant: a salted hash of the id over the variants' weights. */
  stickyRouting: z.boolean().default(false),
  /** A/B analysis workflow over the prediction log (needs api.predictionLog). */
  abTest: z
    .strictObject({
      variantA: z.string().default('champion'),
      variantB: z.string().default('challenger'),
      outcomeType: z.enum(['binary', 'continuous']),
      minimumDetectableEffect: z.number().positive(),
      alpha: z.number().gt(0).lt(1).default(0.05),
      power: z.number().gt(0).lt(1).default(0.8),
    })
    .optional(),
  /** Champion-challenger promotion workflow. */
  promotion: z
    .strictObject({
      championVariant: z.string().default('champion'),
      challengerVariant: z.string().default('challenger'),
      trafficSteps: z.array(z.number()).min(1).default([10, 25, 50, 100]),
      bakeMinutes: z.number().int().min(1).max(1440).default(15),
      maxErrorRate: z.number().min(0).max(1).default(0.01),
      maxLatencyMs: z.number().positive().default(1000),
      minInvocations: z.number().int().min(1).default(100),
    })
    .optional(),
  /**
   * Online allocation: a multi-armed bandit that moves traffic between the production variants from their
   * logged outcomes (needs api.predictionLog; not with abTest or promotion, which keep the weights fixed or
   * move them themselves).
   */
  bandit: z
    .strictObject({
      outcomeType: z.enum(['binary', 'continuous']),
      strategy: z.enum(['thompson', 'ucb']).default('thompson'),
      higherIsBetter: z.boolean().default(true),
      minShare: z.number().min(0).max(0.5).default(0.05),
      maxStep: z.number().gt(0).max(1).default(0.1),
      minObservations: z.number().int().min(1).default(30),
      outcomeDelayMinutes: z.number().int().min(0).max(10080).default(60),
      firstWindowHours: z.number().int().min(1).max(720).default(24),
      intervalMinutes: z.number().int().min(5).max(1440).default(60),
      bakeMinutes: z.number().int().min(1).max(1440).default(15),
    })
    .optional(),
  /** Shadow comparison workflow (needs a shadow variant). */
  shadowComparison: z
    .strictObject({
      observationMinutes: z.number().int().min(1).max(1440).default(60),
      maxErrorRate: z.number().min(0).max(1).default(0.01),
      maxLatencyMs: z.number().positive().default(1000),
      minInvocations: z.number().int().min(1).default(100),
    })
    .optional(),
});

const modelSchema = z.strictObject({
  /** Model family name, e.g. `churn`; used in construct ids, API routes and tags. */
  name: z.string().regex(MODEL_NAME_PATTERN, MODEL_NAME_RULE),
  description: z.string().max(256).optional(),
  variants: z.array(variantSchema),
  shadowVariants: z.array(shadowVariantSchema).default([]),
  dataCapture: z
    .strictObject({
      samplingPercentage: z.number().int().min(1).max(100),
      captureRequests: z.boolean().default(true),
      captureResponses: z.boolean().default(true),
    })
    .optional(),
  /** Blocks all network calls from the model container. Not available for serverless variants. */
  networkIsolation: z.boolean().default(true),
  alarms: alarmThresholdsSchema.optional(),
  deploymentGuardrails: deploymentGuardrailsSchema.optional(),
  experiments: experimentsSchema.default({ stickyRouting: false }),
  /** Serve repeated requests from the API's prediction cache (needs api.predictionCache) for this many seconds. */
  cache: z.strictObject({ ttlSeconds: z.number().int().min(1).max(86_400) }).optional(),
  /** A circuit breaker on the family's endpoint (needs api.circuitBreakers). */
  circuitBreaker: z
    .strictObject({
      failureRateThreshold: z.number().gt(0).lt(1).default(0.5),
      minimumCalls: z.number().int().min(1).max(10_000).default(20),
      windowSeconds: z.number().int().min(1).max(3_600).default(60),
      coolDownSeconds: z.number().int().min(1).max(3_600).default(30),
      probes: z.number().int().min(1).max(100).default(3),
    })
    .optional(),
  /** What answers, marked degraded, when the endpoint fails or its breaker is open: a variant, then a static answer. */
  fallback: z
    .strictObject({ variant: z.string().optional(), staticAnswer: z.unknown().optional() })
    .refine((fallback) => fallback.variant !== undefined || fallback.staticAnswer !== undefined, 'must name a variant or a staticAnswer')
    .optional(),
  /** Near-real-time drift of the captured requests against `baselines/<name>/drift-baseline.json` in the artifact bucket (needs dataCapture). */
  driftDetection: z
    .strictObject({
      intervalMinutes: z.number().int().min(1).max(1440).default(15),
      psiThreshold: z.number().positive().default(0.2),
    })
    .optional(),
  /** Training pipeline, model registry, deployment on approval, retirement and batch inference. */
  lifecycle: lifecycleSchema.optional(),
  /** SageMaker Model Monitor, its alarms, the retraining trigger and the model card (config/model-monitor.ts). */
  modelMonitor: modelMonitorSchema.optional(),
});

const featureGroupSchema = z.strictObject({
  name: z.string(),
  description: z.string().min(1),
  owner: z.string(),
  recordIdentifier: z.string(),
  eventTime: z.string(),
  onlineTtlHours: z.number().optional(),
  features: z.array(
    z.strictObject({
      name: z.string(),
      type: z.string(),
      description: z.string(),
    }),
  ),
});

export const platformConfigSchema = z
  .strictObject({
    envName: z.enum(ENVIRONMENT_NAMES),
    /** Target account. Leave unset for an environment-agnostic synth. */
    account: z.string().regex(/^\d{12}$/, 'must be a 12-digit AWS account id').optional(),
    region: z.string().regex(/^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$/, 'must be an AWS region code such as eu-west-1'),
    /** Retain stateful resources (keys, buckets, logs) when a stack is deleted or a resource replaced. */
    retainData: z.boolean(),
    logRetentionDays: z
      .number()
      .refine((days) => LOG_RETENTION_DAYS.includes(days), `must be one of CloudWatch Logs' retention periods: ${LOG_RETENTION_DAYS.join(', ')}`),
    alarmEmails: z.array(z.email()).default([]),
    network: z.strictObject({
      /** Create a VPC with isolated subnets for models and the inference function. */
      vpc: z.boolean(),
      /** Address range of the VPC: a private IPv4 /16 to /24 block. */
      cidr: z
        .string()
        .regex(/^(10|172\.(1[6-9]|2\d|3[01])|192\.168)(\.\d{1,3}){2,3}\/(1[6-9]|2[0-4])$/, 'must be a private IPv4 CIDR block from /16 to /24, e.g. 10.40.0.0/16')
        .default('10.40.0.0/16'),
      /**
       * Availability Zones of the VPC, named explicitly so that synth needs no lookup. Without
       * them, an environment-agnostic synth can only spread over 2 zones (`maxAzs`).
       */
      availabilityZones: z.array(z.string().regex(/^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d[a-z]$/, 'must be an Availability Zone name such as us-east-1a')).min(2).max(6).optional(),
      maxAzs: z.number().int().min(1).max(3).default(2),
    }),
    api: z.strictObject({
      throttlingRateLimit: z.number().positive().default(100),
      throttlingBurstLimit: z.number().int().positive().default(200),
      /** Reserved concurrency of the inference function; bounds what one caller can spend. */
      reservedConcurrency: z.number().int().min(1).max(1000).default(10),
      /** Attach an AWS WAF web ACL with AWS managed rule groups to the inference API. */
      waf: z.boolean(),
      /** Log every prediction to DynamoDB and serve the outcomes route (A/B tests, champion-challenger). */
      predictionLog: z.boolean().default(false),
      /** Days a logged prediction and its outcome are kept. */
      predictionLogRetentionDays: z.number().int().min(1).max(3650).default(90),
      /** The prediction cache for the models with `cache`: memory in each function instance, then a shared DynamoDB table. */
      predictionCache: z
        .strictObject({
          /** In-memory tier per function instance, MiB (0: shared tier only). */
          memorySizeMiB: z.number().int().min(0).max(256).default(32),
          /** A shared-tier read slower than this is a miss. */
          sharedReadTimeoutMs: z.number().int().min(1).max(1000).default(100),
        })
        .optional(),
      /** Circuit breakers for the families with `circuitBreaker`, their state shared through the API's state table. */
      circuitBreakers: z.boolean().default(false),
      /** Serve the answers the families' batch runs load (`lifecycle.batchInference.precomputed`) from the state table. */
      precomputedPredictions: z.boolean().default(false),
    }),
    models: z.array(modelSchema).min(1),
    /**
     * Ensembles, cascades and chains of the families (config/composites-schema.ts), each served at
     * `POST /models/{name}/predict` like a family, calling the families' endpoints through their routes.
     */
    composites: z.array(compositeSchema).default([]),
    /** Feature Store: feature groups (definitions), their speed and batch ingestion, offline queries. */
    featureStore: z
      .strictObject({
        groups: z.array(featureGroupSchema).min(1),
        /** Chunk files the batch layer ingests at once. */
        batchConcurrency: z.number().int().min(1).max(1000).default(10),
      })
      .optional(),
    /** RAG: knowledge base (OpenSearch), document ingestion, question answering with Bedrock, prompt and guardrail. */
    rag: ragSchema.optional(),
  })
  .superRefine(
    (config, ctx) => {
      // Runs even when another part of the config failed to parse (`when` below), so that one typo does not
      // hide the rules across fields until it is fixed. Each rule reads only parts that parsed: a part with an
      // aborting issue of its own (ctx.issues) is skipped, and so is whatever could not be read at all.
      if (!isPlainObject(config)) return;
      // A part is readable unless an aborting issue lies under it (a wrong type, a value not in an enum); an
      // issue zod continues past (an unknown key, a number out of range) leaves it readable.
      const parsed = (...path: PropertyKey[]) =>
        !ctx.issues.some((issue) => (issue as { continue?: boolean }).continue !== true && path.every((part, index) => issue.path?.[index] === part));
      const groups = parsed('featureStore') && isPlainObject(config.featureStore) && Array.isArray(config.featureStore.groups) ? config.featureStore.groups : [];
      const groupNames = new Set<string>();
      groups.forEach((group, index) => {
        if (!parsed('featureStore', 'groups', index)) return;
        for (const issue of checkFeatureGroupDefinition(group as FeatureGroupDefinition)) {
          ctx.addIssue({ code: 'custom', path: ['featureStore', 'groups', index, ...issue.path], message: issue.message });
        }
        if (groupNames.has(group.name)) {
          ctx.addIssue({ code: 'custom', path: ['featureStore', 'groups', index, 'name'], message: `'${group.name}' is already used by another feature group` });
        }
        groupNames.add(group.name);
      });
      const networkParsed = parsed('network') && parsed('region') && parsed('account') && isPlainObject(config.network);
      if (networkParsed) {
        config.network.availabilityZones?.forEach((zone, index) => {
          if (!zone.startsWith(config.region)) {
            ctx.addIssue({ code: 'custom', path: ['network', 'availabilityZones', index], message: `'${zone}' is not in region ${config.region}` });
          }
        });
      }
      if (networkParsed && config.network.vpc && !config.network.availabilityZones && config.account === undefined && config.network.maxAzs > 2) {
        ctx.addIssue({
          code: 'custom',
          path: ['network', 'maxAzs'],
          message: `an environment-agnostic synth (no account) spreads over at most 2 zones; list network.availabilityZones to use ${config.network.maxAzs}`,
        });
      }
      const names = new Set<string>();
      // Rules of a model that read other parts need those parts to have parsed: the experiments read the API
      // and the environment, the endpoint's rules the network.
      (Array.isArray(config.models) ? config.models : []).forEach((model, index) => {
        if (!parsed('models', index) || !isPlainObject(model)) return;
        if (names.has(model.name)) {
          ctx.addIssue({ code: 'custom', path: ['models', index, 'name'], message: `'${model.name}' is already used by another model` });
        }
        if (RESERVED_FAMILY_NAMES.includes(model.name)) {
          ctx.addIssue({ code: 'custom', path: ['models', index, 'name'], message: `'${model.name}' is the name of a shared stack (MlPlatform-<env>-<name>); choose another family name` });
        }
        names.add(model.name);
        if (parsed('api') && parsed('envName') && isPlainObject(config.api)) {
          checkExperiments(config, model, index, ctx);
          if (model.cache !== undefined && config.api.predictionCache === undefined) {
            ctx.addIssue({ code: 'custom', path: ['models', index, 'cache'], message: `needs api.predictionCache (the table and memory the cached answers live in)` });
          }
          if (model.circuitBreaker !== undefined && !config.api.circuitBreakers) {
            ctx.addIssue({ code: 'custom', path: ['models', index, 'circuitBreaker'], message: 'needs api.circuitBreakers: true' });
          }
          const fallbackVariant = model.fallback?.variant;
          if (fallbackVariant !== undefined && !model.variants.some((variant) => variant.name === fallbackVariant)) {
            ctx.addIssue({ code: 'custom', path: ['models', index, 'fallback', 'variant'], message: `'${fallbackVariant}' is not a production variant of ${model.name} (${model.variants.map((variant) => variant.name).join(', ')})` });
          }
        }
        checkModelMonitor(model, index, ctx);
        if (!networkParsed) return;
        const issues = checkEndpointSpec({
          variants: model.variants,
          shadowVariants: model.shadowVariants,
          dataCaptureEnabled: model.dataCapture !== undefined,
          inVpc: config.network.vpc,
          networkIsolation: model.networkIsolation,
        });
        for (const issue of issues) {
          // The VPC is chosen per environment, not per model: report it where it is set.
          const path = issue.path[0] === 'vpc' ? ['network', 'vpc'] : ['models', index, ...issue.path];
          const message = issue.path[0] === 'vpc' ? `models[${index}] (${model.name}): ${issue.message}` : issue.message;
          ctx.addIssue({ code: 'custom', path, message });
        }
      });
      checkComposites(config, parsed, ctx);
    },
    { when: () => true },
  );

type RawConfig = z.output<typeof platformConfigSchema>;

/** Rules of the composites across the config: unique names, no family's name, members that are families and their variants. */
function checkComposites(config: RawConfig, parsed: (...path: PropertyKey[]) => boolean, ctx: z.RefinementCtx): void {
  if (!Array.isArray(config.composites) || !parsed('models')) return;
  // Only families that parsed are known; a member naming a family that did not parse is not reported twice.
  const families = new Map<string, readonly string[]>();
  const unparsed = new Set<string>();
  (Array.isArray(config.models) ? config.models : []).forEach((model, index) => {
    if (!isPlainObject(model) || typeof model.name !== 'string') return;
    if (parsed('models', index) && Array.isArray(model.variants)) families.set(model.name, model.variants.map((variant) => variant.name));
    else unparsed.add(model.name);
  });
  const names = new Set<string>();
  config.composites.forEach((composite, index) => {
    if (!parsed('composites', index) || !isPlainObject(composite)) return;
    const at = (path: Array<string | number>) => ['composites', index, ...path];
    if (families.has(composite.name) || unparsed.has(composite.name)) {
      ctx.addIssue({ code: 'custom', path: at(['name']), message: `'${composite.name}' is the name of a model family; a composite is served under its own name` });
    } else if (names.has(composite.name)) {
      ctx.addIssue({ code: 'custom', path: at(['name']), message: `'${composite.name}' is already used by another composite` });
    }
    names.add(composite.name);
    for (const issue of checkComposite(composite, families, unparsed)) {
      ctx.addIssue({ code: 'custom', path: at(issue.path), message: issue.message });
    }
  });
}

/** Cross-field rules of a model's experiments: each one must fit the model's variants. */
function checkExperiments(config: RawConfig, model: RawConfig['models'][number], index: number, ctx: z.RefinementCtx): void {
  const at = (...path: Array<string | number>) => ['models', index, 'experiments', ...path];
  const production = model.variants.map((variant) => variant.name);
  const requireVariant = (path: Array<string | number>, name: string) => {
    if (!production.includes(name)) {
      ctx.addIssue({ code: 'custom', path: at(...path), message: `'${name}' is not a production variant of ${model.name} (${production.join(', ')})` });
    }
  };
  const { experiments } = model;
  if (experiments.stickyRouting && production.length < 2) {
    ctx.addIssue({ code: 'custom', path: at('stickyRouting'), message: `needs at least two production variants; ${model.name} has ${production.length}` });
  }
  if (experiments.bandit) {
    if (production.length < 2 || production.length > 10) {
      ctx.addIssue({ code: 'custom', path: at('bandit'), message: `needs 2 to 10 production variants (its arms); ${model.name} has ${production.length}` });
    }
    if (!config.api.predictionLog) {
      ctx.addIssue({ code: 'custom', path: at('bandit'), message: 'needs api.predictionLog: true (the bandit learns from the logged predictions and outcomes)' });
    }
    for (const other of ['abTest', 'promotion'] as const) {
      if (experiments[other]) ctx.addIssue({ code: 'custom', path: at('bandit'), message: `cannot run with ${other}: the bandit moves the weights that ${other === 'abTest' ? "the A/B test's analysis assumes fixed" : 'the promotion shifts step by step'}; choose one` });
    }
    if (experiments.bandit.minShare * production.length > 1) {
      ctx.addIssue({ code: 'custom', path: at('bandit', 'minShare'), message: `${experiments.bandit.minShare} for each of ${production.length} variants is more than all the traffic` });
    }
  }
  if (experiments.abTest) {
    requireVariant(['abTest', 'variantA'], experiments.abTest.variantA);
    requireVariant(['abTest', 'variantB'], experiments.abTest.variantB);
    if (!config.api.predictionLog) {
      ctx.addIssue({ code: 'custom', path: at('abTest'), message: 'needs api.predictionLog: true (the analysis reads the logged predictions and outcomes)' });
    }
    if (experiments.abTest.outcomeType === 'binary' && experiments.abTest.minimumDetectableEffect >= 1) {
      ctx.addIssue({ code: 'custom', path: at('abTest', 'minimumDetectableEffect'), message: 'must be below 1 for binary outcomes (it is a difference in rates)' });
    }
  }
  if (experiments.promotion) {
    requireVariant(['promotion', 'championVariant'], experiments.promotion.championVariant);
    requireVariant(['promotion', 'challengerVariant'], experiments.promotion.challengerVariant);
    const steps = experiments.promotion.trafficSteps;
    steps.forEach((step, stepIndex) => {
      if (!(step > 0 && step <= 100) || (stepIndex > 0 && step <= steps[stepIndex - 1])) {
        ctx.addIssue({ code: 'custom', path: at('promotion', 'trafficSteps', stepIndex), message: `must be above the previous step and at most 100; got ${step}` });
      }
    });
    if (steps[steps.length - 1] !== 100) {
      ctx.addIssue({ code: 'custom', path: at('promotion', 'trafficSteps'), message: `must end at 100 (all traffic on the challenger); got [${steps.join(', ')}]` });
    }
  }
  if (model.driftDetection && !model.dataCapture) {
    ctx.addIssue({ code: 'custom', path: ['models', index, 'driftDetection'], message: `needs dataCapture: the detector reads ${model.name}'s captured requests` });
  }
  if (experiments.shadowComparison && model.shadowVariants.length !== 1) {
    ctx.addIssue({ code: 'custom', path: at('shadowComparison'), message: `needs a shadow variant; ${model.name} has none` });
  }
  const lifecycle = model.lifecycle;
  if (lifecycle?.approval === 'automatic' && config.envName !== 'dev') {
    ctx.addIssue({ code: 'custom', path: ['models', index, 'lifecycle', 'approval'], message: `automatic approval deploys every version that passes the gate; it is allowed in dev only, not ${config.envName}` });
  }
  if (lifecycle?.deployment.targetVariant !== undefined && !production.includes(lifecycle.deployment.targetVariant)) {
    ctx.addIssue({ code: 'custom', path: ['models', index, 'lifecycle', 'deployment', 'targetVariant'], message: `'${lifecycle.deployment.targetVariant}' is not a production variant of ${model.name} (${production.join(', ')})` });
  }
  const constraintsKey = lifecycle?.dataValidation?.constraintsKey;
  if (constraintsKey !== undefined && (!constraintsKey.startsWith(`${model.name}/constraints/`) || constraintsKey.endsWith('/'))) {
    ctx.addIssue({ code: 'custom', path: ['models', index, 'lifecycle', 'dataValidation', 'constraintsKey'], message: `must be an object key under ${model.name}/constraints/ in the training-data bucket; got '${constraintsKey}'` });
  }
  const precomputed = lifecycle?.batchInference?.precomputed;
  if (precomputed !== undefined) {
    const at = (...path: string[]) => ['models', index, 'lifecycle', 'batchInference', 'precomputed', ...path];
    if (!config.api.precomputedPredictions) ctx.addIssue({ code: 'custom', path: at(), message: 'needs api.precomputedPredictions: true (the API serves the loaded answers from its state table)' });
    const groups = isPlainObject(config.featureStore) && Array.isArray(config.featureStore.groups) ? config.featureStore.groups.map((group) => group.name) : [];
    if (!groups.includes(precomputed.featureGroup)) {
      ctx.addIssue({ code: 'custom', path: at('featureGroup'), message: `'${precomputed.featureGroup}' is not a feature group of featureStore (${groups.join(', ') || 'none'}): requests name their entity by one` });
    }
    if (precomputed.ttlHours < precomputed.maxAgeHours) {
      ctx.addIssue({ code: 'custom', path: at('ttlHours'), message: `must be at least maxAgeHours (${precomputed.maxAgeHours}): an answer deleted before it ages out serves no fallback; got ${precomputed.ttlHours}` });
    }
    const contentType = lifecycle?.batchInference?.contentType ?? 'text/csv';
    if (/^text\/csv\b/i.test(contentType) && !/^\d{1,3}$/.test(precomputed.recordIdField)) {
      ctx.addIssue({ code: 'custom', path: at('recordIdField'), message: `must be a column number (0-999) of the joined, filtered CSV row with contentType ${contentType}, e.g. '0' with outputFilter '$[0,-1]'; got '${precomputed.recordIdField}'` });
    }
  }
  const federated = lifecycle?.federated;
  if (federated !== undefined) {
    const at = (...path: (string | number)[]) => ['models', index, 'lifecycle', 'federated', ...path];
    if (federated.coordinatorAccount === undefined && config.account === undefined) {
      ctx.addIssue({ code: 'custom', path: at('coordinatorAccount'), message: 'is required when the environment has no account: the silos trust the coordinator by its account' });
    }
    const seen = new Map<string, number>();
    federated.clients.forEach((client, clientIndex) => {
      const earlier = seen.get(client.name);
      if (earlier !== undefined) ctx.addIssue({ code: 'custom', path: at('clients', clientIndex, 'name'), message: `repeats clients[${earlier}].name ('${client.name}')` });
      else seen.set(client.name, clientIndex);
      const image = parseEcrImageUri(client.trainingImage ?? federated.training.image);
      if (image !== undefined && image.region !== client.region) {
        const path = client.trainingImage === undefined ? at('clients', clientIndex) : at('clients', clientIndex, 'trainingImage');
        ctx.addIssue({ code: 'custom', path, message: `the training image is in ${image.region}, the silo in ${client.region}: SageMaker pulls a job's image from its own region; set trainingImage to the image in ${client.region}` });
      }
    });
    if (federated.minClients !== undefined && federated.minClients > federated.clients.length) {
      ctx.addIssue({ code: 'custom', path: at('minClients'), message: `must be at most the number of clients (${federated.clients.length}); got ${federated.minClients}` });
    }
    const { aggregator, trimFraction, privacy } = federated.aggregation;
    if (aggregator === 'trimmed-mean' && trimFraction === undefined) ctx.addIssue({ code: 'custom', path: at('aggregation', 'trimFraction'), message: 'is required with the trimmed-mean aggregator' });
    if (aggregator !== 'trimmed-mean' && trimFraction !== undefined) ctx.addIssue({ code: 'custom', path: at('aggregation', 'trimFraction'), message: 'is only used by the trimmed-mean aggregator' });
    if (aggregator !== 'fedavg' && privacy !== undefined) ctx.addIssue({ code: 'custom', path: at('aggregation', 'privacy'), message: 'is only available with the fedavg aggregator (the noise is calibrated to the mean of clipped updates)' });
    if (federated.pollIntervalMinutes > federated.roundTimeoutMinutes) {
      ctx.addIssue({ code: 'custom', path: at('pollIntervalMinutes'), message: `must be at most roundTimeoutMinutes (${federated.roundTimeoutMinutes}); got ${federated.pollIntervalMinutes}` });
    }
  }
  if (lifecycle?.incrementalTraining !== undefined && lifecycle.dataValidation === undefined) {
    ctx.addIssue({ code: 'custom', path: ['models', index, 'lifecycle', 'incrementalTraining'], message: "needs lifecycle.dataValidation: its constraints judge each micro-batch, and its format is the windows'" });
  }
  const guardrails = model.deploymentGuardrails;
  if (guardrails && guardrails.mode !== 'all-at-once' && guardrails.percent === undefined) {
    ctx.addIssue({ code: 'custom', path: ['models', index, 'deploymentGuardrails', 'percent'], message: `is required for ${guardrails.mode} traffic shifting` });
  }
}

type SchemaInput = z.input<typeof platformConfigSchema>;
/** One model family as written in a config file, every field of the schema. */
export type ModelConfigInput = SchemaInput['models'][number];

/** Any part of a value: objects partial at every level; arrays and scalars whole. */
export type DeepPartial<T> = T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

/** Settings that many model families share, written once per environment (`modelDefaults`). */
export type ModelDefaultsInput = DeepPartial<Omit<ModelConfigInput, 'name'>>;

/**
 * A model family as written in a config file: with `modelDefaults`, only what differs from them
 * (the schema checks the merged family, so a field missing from both is reported by its path).
 */
export type ModelFamilyInput = DeepPartial<ModelConfigInput> & { readonly name: string };

/** The config of one environment as written in `config/<env>.ts`. */
export type PlatformConfigInput = Omit<SchemaInput, 'models'> & {
  /**
   * What the environment's model families have in common, merged under each of them: objects field
   * by field at every level, arrays and scalars whole. A family replaces a default by setting the
   * field, and drops a default section by setting it to `undefined` explicitly.
   */
  readonly modelDefaults?: ModelDefaultsInput;
  readonly models: readonly (ModelConfigInput | ModelFamilyInput)[];
};
export type PlatformConfig = z.output<typeof platformConfigSchema>;
export type ModelConfig = PlatformConfig['models'][number];
export type VariantConfig = ModelConfig['variants'][number];
export type ShadowVariantConfig = ModelConfig['shadowVariants'][number];

export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: readonly string[],
  ) {
    super(`Invalid configuration ${source}:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

/** An object literal (from any realm: structuredClone in a test VM makes objects of another one). */
const isPlainObject = (value: unknown): value is Record<string, unknown> => {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === null || Object.getPrototypeOf(prototype) === null;
};

/** `defaults` under `value`: plain objects merged key by key; anything else in `value` wins whole; an own key set to `undefined` drops the default. */
export function mergeDefaults(defaults: unknown, value: unknown): unknown {
  if (!isPlainObject(defaults) || !isPlainObject(value)) return value === undefined ? defaults : value;
  const merged: Record<string, unknown> = { ...defaults };
  for (const [key, own] of Object.entries(value)) {
    if (own === undefined) delete merged[key];
    else merged[key] = mergeDefaults(defaults[key], own);
  }
  return merged;
}

/** Whether `path` is set in `value` (own keys all the way down). */
function isSetAt(value: unknown, path: ReadonlyArray<PropertyKey>): boolean {
  let current = value;
  for (const part of path) {
    if (current === null || typeof current !== 'object' || !Object.hasOwn(current, part)) return false;
    current = (current as Record<PropertyKey, unknown>)[part];
  }
  return true;
}

/**
 * Parses and validates a raw config object; throws a ConfigError that lists every bad field by path.
 * `modelDefaults` are merged under every model first; a problem with a value that came from them
 * names the model's path and says so.
 */
export function parseConfig(raw: unknown, source: string): PlatformConfig {
  const problems: string[] = [];
  let input = raw;
  if (isPlainObject(raw) && Object.hasOwn(raw, 'modelDefaults')) {
    const { modelDefaults, ...rest } = raw;
    if (!isPlainObject(modelDefaults)) {
      problems.push(`modelDefaults: must be an object of model settings; got ${Array.isArray(modelDefaults) ? 'an array' : typeof modelDefaults}`);
      input = rest;
    } else {
      if (Object.hasOwn(modelDefaults, 'name')) problems.push('modelDefaults.name: a name is never shared; set it on each model');
      input = { ...rest, models: Array.isArray(rest.models) ? rest.models.map((model) => mergeDefaults(modelDefaults, model)) : rest.models };
    }
  }
  const result = platformConfigSchema.safeParse(input);
  if (!result.success) {
    const models = isPlainObject(raw) && Array.isArray(raw.models) ? raw.models : [];
    for (const issue of result.error.issues) {
      const path = issue.path as Array<string | number>;
      const fromDefaults = path[0] === 'models' && typeof path[1] === 'number' && path.length > 2 && !isSetAt(models[path[1]], path.slice(2)) && isSetAt((raw as Record<string, unknown>).modelDefaults, path.slice(2));
      problems.push(`${formatPath(path) || '(root)'}: ${issue.message}${fromDefaults ? ` (the value comes from modelDefaults.${formatPath(path.slice(2))})` : ''}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(source, problems);
  return result.data!;
}
