import { ProcessingInstanceType, TrainingInstanceType, TransformInstanceType } from '../lib/core/private/aws-enums';
import { z } from 'zod';
import { parseEcrImageUri } from '../lib/core/sagemaker-execution-role';

/**
 * The model lifecycle of one model family (training pipeline, registry, deployment, retirement,
 * batch inference): `models[].lifecycle` in an environment's config.
 */

const ECR_IMAGE = z
  .string()
  .refine((uri) => parseEcrImageUri(uri) !== undefined, 'must be an ECR image URI: <account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag> or @sha256:<digest>');
const oneOf = (values: readonly string[], what: string) =>
  z.string().refine((value) => values.includes(value), { message: `must be a SageMaker ${what} instance type, such as ${values.includes('ml.m5.xlarge') ? 'ml.m5.xlarge' : values[0]}` });
const S3_URI = z.string().regex(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\/.*$/, 'must be an s3://bucket/key URI');
/** An EventBridge schedule expression. */
export const SCHEDULE_EXPRESSION = z
  .string()
  .regex(/^(rate\([1-9]\d* (minute|minutes|hour|hours|day|days)\)|cron\(\S+ \S+ \S+ \S+ \S+ \S+\))$/, 'must be rate(<n> <unit>) or cron(<6 fields>)');

const jobSchema = (instanceTypes: readonly string[], what: string) =>
  z.strictObject({
    image: ECR_IMAGE,
    instanceType: oneOf(instanceTypes, what),
    instanceCount: z.number().int().min(1).max(100).default(1),
    volumeSizeGb: z.number().int().min(1).max(16384).default(30),
    maxRuntimeMinutes: z.number().int().min(1).max(28 * 24 * 60).default(120),
    /** Container entrypoint, e.g. ['python3', '/opt/ml/code/preprocess.py']. */
    entrypoint: z.array(z.string().min(1)).min(1).optional(),
    environment: z.record(z.string(), z.string()).default({}),
  });

const HYPERPARAMETERS = z.record(z.string().min(1).max(256), z.string().max(2500));

export const lifecycleSchema = z.strictObject({
  /** manual: a person approves each version (staging, prod); automatic: versions that pass the gate deploy at once (dev only). */
  approval: z.enum(['manual', 'automatic']).default('manual'),
  /**
   * Name of the family's model package group. Unset, the blueprint derives one from the stack;
   * set it to keep (or `cdk import`) an existing group with its versions, e.g. when moving from an
   * earlier stack layout (see the README's migration notes).
   */
  modelPackageGroupName: z
    .string()
    .regex(/^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/, 'must be 1-63 letters, digits or hyphens, starting and ending with a letter or digit (SageMaker ModelPackageGroupName)')
    .optional(),
  preprocessing: jobSchema(Object.values(ProcessingInstanceType), 'processing'),
  training: jobSchema(Object.values(TrainingInstanceType), 'training').extend({
    hyperparameters: HYPERPARAMETERS.default({}),
    metricDefinitions: z.array(z.strictObject({ name: z.string().min(1), regex: z.string().min(1) })).optional(),
  }),
  /** Fine-tune from a pretrained model (the one switch between transfer learning and training from scratch). */
  transferLearning: z.strictObject({ baseModelS3Uri: S3_URI, hyperparameters: HYPERPARAMETERS.default({}), channelName: z.string().regex(/^[A-Za-z0-9.\-_]{1,64}$/).default('model') }).optional(),
  evaluation: jobSchema(Object.values(ProcessingInstanceType), 'processing').extend({
    /** Dotted path of the gate metric in evaluation.json, e.g. binary_classification_metrics.auc.value. */
    metric: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/, 'must be a dotted path such as binary_classification_metrics.auc.value'),
    threshold: z.number(),
    direction: z.enum(['higher-is-better', 'lower-is-better']).default('higher-is-better'),
  }),
  /** Retrain on this schedule, on `<family>/datasets/current/`. */
  retrainSchedule: SCHEDULE_EXPRESSION.optional(),
  /** Train when `<family>/datasets/<version>/_SUCCESS` lands in the training-data bucket. */
  trainOnDataArrival: z.boolean().default(false),
  deployment: z
    .strictObject({
      /** The production variant an approved version replaces; the first one when unset. */
      targetVariant: z.string().optional(),
      deployOnApproval: z.boolean().default(true),
    })
    .default({ deployOnApproval: true }),
  /**
   * Validate each run's dataset before preprocessing against `constraintsKey` in the training-data bucket
   * (made with `npm run suggest-constraints`); a dataset that fails stops the run with a report.
   */
  dataValidation: z
    .strictObject({
      format: z.enum(['csv', 'jsonl']).default('csv'),
      /** Under `<family>/constraints/`; default `<family>/constraints/constraints.json`. */
      constraintsKey: z.string().optional(),
    })
    .optional(),
  /**
   * Federated training across client silos whose data never leaves them (seed pattern 12): the coordinator
   * workflow in this family's stack, one client stack (`MlPlatform-<env>-<family>-Silo-<name>`) per silo, in
   * its account and region. The global model is registered in the family's model package group.
   */
  federated: z
    .strictObject({
      /** The physical name of the access role every silo creates and the coordinator assumes. */
      accessRoleName: z.string().regex(/^[\w+=,.@-]{1,64}$/, 'must be an IAM role name (1-64 letters, digits and +=,.@_-)'),
      /** The coordinator's (platform) account, which the silos trust; required when the environment has no `account`. */
      coordinatorAccount: z.string().regex(/^\d{12}$/, 'must be a 12-digit AWS account id').optional(),
      clients: z
        .array(
          z.strictObject({
            name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,15}$/, 'must be 1-16 lowercase letters, digits or hyphens'),
            account: z.string().regex(/^\d{12}$/, 'must be a 12-digit AWS account id'),
            region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be a region such as eu-west-1'),
            /** The silo's training data: a bucket of the silo (imported) or, without `bucketName`, one its stack creates. */
            data: z.strictObject({
              bucketName: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be an S3 bucket name').optional(),
              prefix: z.string().regex(/^([A-Za-z0-9!_.*'()-]+\/)*$/, "must be empty or a key prefix ending in '/'"),
            }),
            /** The training image in the silo's region (SageMaker pulls from the job's region); `training.image` when unset. */
            trainingImage: ECR_IMAGE.optional(),
          }),
        )
        .min(1, 'must list at least one silo'),
      training: jobSchema(Object.values(TrainingInstanceType), 'training')
        .omit({ entrypoint: true, environment: true })
        .extend({ hyperparameters: HYPERPARAMETERS.default({}) }),
      aggregation: z
        .strictObject({
          aggregator: z.enum(['fedavg', 'median', 'trimmed-mean']).default('fedavg'),
          trimFraction: z.number().min(0).lt(0.5).optional(),
          privacy: z.strictObject({ clipNorm: z.number().positive(), noiseMultiplier: z.number().positive() }).optional(),
          serverLearningRate: z.number().positive().default(1),
        })
        .default({ aggregator: 'fedavg', serverLearningRate: 1 }),
      /** The fewest silos a round may be aggregated from; all of them when unset. */
      minClients: z.number().int().min(1).optional(),
      metric: z.strictObject({ name: z.string().min(1), direction: z.enum(['higher-is-better', 'lower-is-better']) }),
      maxRounds: z.number().int().min(1).max(1000),
      patience: z.number().int().min(1).optional(),
      minDelta: z.number().min(0).optional(),
      /** The image that serves the global model (reads model.json from the artifact); the training image when unset. */
      inferenceImage: ECR_IMAGE.optional(),
      roundTimeoutMinutes: z.number().int().min(1).default(180),
      pollIntervalMinutes: z.number().int().min(1).default(5),
    })
    .optional(),
  /**
   * Incremental training from streamed labelled events (seed pattern 17, online learning): a delivery stream writes
   * micro-batches under `<family>/stream/arrived/`; each is validated against `dataValidation`'s constraints into a
   * window, and when the guard rails allow, the training pipeline fine-tunes the approved version on the window and
   * compares the result with it on the same test split. Needs `dataValidation`.
   */
  incrementalTraining: z
    .strictObject({
      /** The fewest validated records a window must hold before an update trains on it. */
      minRecords: z.number().int().min(1).max(100_000_000).default(1000),
      /** The least time from the end of one update to the start of the next. */
      cooldownMinutes: z.number().int().min(0).max(30 * 24 * 60).default(24 * 60),
      /** How often arrived micro-batches are validated and the guard rails checked (EventBridge Scheduler). */
      checkSchedule: SCHEDULE_EXPRESSION.default('rate(15 minutes)'),
      /** Hyperparameters of an update, over the fine-tuning ones (e.g. fewer rounds). */
      hyperparameters: HYPERPARAMETERS.default({}),
      /** How long and how much the delivery stream buffers before it writes a micro-batch (Firehose's ranges). */
      bufferingSeconds: z.number().int().min(0).max(900).default(300),
      bufferingMiB: z.number().int().min(1).max(128).default(5),
    })
    .optional(),
  batchInference: z
    .strictObject({
      instanceType: oneOf(Object.values(TransformInstanceType), 'transform'),
      instanceCount: z.number().int().min(1).max(100).default(1),
      contentType: z.string().default('text/csv'),
      inputFilter: z.string().optional(),
      outputFilter: z.string().optional(),
      joinInputToOutput: z.boolean().default(true),
      /** EventBridge Scheduler expression of the scheduled run over `<family>/batch-input/current/`. */
      schedule: SCHEDULE_EXPRESSION.optional(),
      /**
       * Load each run's answers into the inference API's state table, where the API serves them to requests
       * that name the entity (needs api.precomputedPredictions): the batch layer, served in real time.
       */
      precomputed: z
        .strictObject({
          /** The feature group whose record ids the input's records carry: the `entity.featureGroup` of a request. */
          featureGroup: z.string(),
          /** Where each joined record holds its id: a field name or JSON pointer, or a column number for CSV. */
          recordIdField: z.string().min(1),
          /** An answer is served while it is younger than this (from the run's start); older, it is a fallback. */
          maxAgeHours: z.number().int().min(1).max(720).default(26),
          /** When DynamoDB deletes an answer, after the run's start. */
          ttlHours: z.number().int().min(1).max(8784).default(72),
        })
        .optional(),
    })
    .optional(),
});

export type LifecycleConfig = z.output<typeof lifecycleSchema>;
