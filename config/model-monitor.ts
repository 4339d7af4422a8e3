import { MonitoringProblemType, ProcessingInstanceType } from '../lib/core/private/aws-enums';
import { z } from 'zod';
import { MODEL_CARD_RISK_RATINGS } from '../lib/monitoring/model-card';

/**
 * The per-model `modelMonitor` section of the environment config: which SageMaker Model Monitor
 * monitors run and when, what the drift and quality alarms watch, the retraining cooldown and the
 * model card. Enum values are checked against the AWS SDK's own enums.
 */

const PROCESSING_INSTANCE_TYPES: readonly string[] = Object.values(ProcessingInstanceType);
const PROBLEM_TYPES = Object.values(MonitoringProblemType) as [string, ...string[]];

/** `hourly`, `daily` (00:00 UTC) or `daily@HH` (that hour, UTC): what Model Monitor's cron accepts. */
export const monitoringScheduleSchema = z
  .string()
  .regex(/^(hourly|daily(@([01]\d|2[0-3]))?)$/, 'must be hourly, daily or daily@HH (an hour of the day in UTC, 00-23)')
  .default('hourly');

const predictionAttributes = {
  /** Index (CSV) or JSONPath (JSON) of the predicted label in the captured output. */
  inferenceAttribute: z.string().min(1).optional(),
  /** Index (CSV) or JSONPath (JSON) of the predicted probability in the captured output. */
  probabilityAttribute: z.string().min(1).optional(),
  /** Probability from which a prediction is the positive class. */
  probabilityThreshold: z.number().gt(0).lt(1).optional(),
};

const facetSchema = z.strictObject({ name: z.string().min(1), valuesOrThreshold: z.array(z.union([z.string(), z.number()])).min(1).optional() });

export const modelMonitorSchema = z.strictObject({
  /** Instance type of the monitoring and baselining jobs (AWS SDK ProcessingInstanceType). */
  instanceType: z
    .string()
    .refine((type) => PROCESSING_INSTANCE_TYPES.includes(type), 'must be a SageMaker processing instance type such as ml.m5.xlarge (AWS SDK ProcessingInstanceType)')
    .default('ml.m5.xlarge'),
  /** Feature names of the captured CSV, in order: names the per-feature metrics; needed by bias and explainability. */
  headers: z.array(z.string().regex(/^[A-Za-z0-9_]+$/, 'must be letters, digits or underscores')).min(1).optional(),
  /** Data quality and feature drift against the training data's baseline. */
  dataQuality: z.strictObject({ schedule: monitoringScheduleSchema }).optional(),
  /** Model quality (accuracy, precision, recall, F1...) against ground truth. */
  modelQuality: z
    .strictObject({
      schedule: monitoringScheduleSchema,
      problemType: z.enum(PROBLEM_TYPES, `must be one of ${PROBLEM_TYPES.join(', ')} (AWS SDK MonitoringProblemType)`),
      ...predictionAttributes,
      /** Column of the validation set that holds the true label. */
      groundTruthAttribute: z.string().min(1).default('label'),
      /** CRITICAL alarm when a metric falls below its minimum, e.g. { f1: 0.7 }. */
      minimums: z.record(z.string().regex(/^[a-z0-9_]+$/, 'must be a Model Monitor metric name such as accuracy, f1 or recall'), z.number().min(0).max(1)).default({}),
    })
    .optional(),
  /** Bias drift (SageMaker Clarify). */
  bias: z
    .strictObject({
      schedule: monitoringScheduleSchema,
      label: z.string().min(1),
      labelValuesOrThreshold: z.array(z.union([z.string(), z.number()])).min(1),
      facets: z.array(facetSchema).min(1),
      ...predictionAttributes,
    })
    .optional(),
  /** Feature-attribution drift (SageMaker Clarify SHAP). */
  explainability: z
    .strictObject({
      schedule: monitoringScheduleSchema,
      shapBaseline: z.array(z.union([z.string(), z.number()])).min(1),
      numSamples: z.number().int().min(1).max(10_000).default(100),
      ...predictionAttributes,
    })
    .optional(),
  /** WARNING when Model Monitor's drift of a feature exceeds its threshold, e.g. { tenure_months: 0.2 }. */
  featureDriftThresholds: z.record(z.string(), z.number().positive()).default({}),
  /** After a violation starts retraining, further violations wait this long. */
  retrainingCooldownHours: z.number().int().min(1).max(720).default(24),
  /** The SageMaker model card of the model. */
  modelCard: z
    .strictObject({
      owner: z.string().min(1).optional(),
      problemType: z.string().min(1).optional(),
      algorithmType: z.string().min(1).optional(),
      intendedUse: z.strictObject({
        purpose: z.string().min(1),
        intendedUses: z.string().min(1),
        riskRating: z.enum(MODEL_CARD_RISK_RATINGS, `must be one of ${MODEL_CARD_RISK_RATINGS.join(', ')} (the model card schema's risk ratings)`),
        riskRatingExplanation: z.string().min(1).optional(),
        factorsAffectingEfficiency: z.string().min(1).optional(),
      }),
      trainingDetails: z
        .strictObject({
          objective: z.string().min(1).optional(),
          observations: z.string().min(1).optional(),
          hyperParameters: z.record(z.string(), z.string()).optional(),
          metrics: z.record(z.string(), z.number()).optional(),
        })
        .optional(),
      ethicalConsiderations: z.string().min(1).optional(),
      caveatsAndRecommendations: z.string().min(1).optional(),
    })
    .optional(),
});

export type ModelMonitorConfig = z.output<typeof modelMonitorSchema>;

/** What a model's `modelMonitor` section needs from the rest of its config; each issue names the field. */
export function checkModelMonitor(
  model: { name: string; dataCapture?: unknown; variants: Array<{ capacity: { kind: string } }>; modelMonitor?: ModelMonitorConfig },
  index: number,
  ctx: z.RefinementCtx,
): void {
  const monitor = model.modelMonitor;
  if (!monitor) return;
  const at = (...path: Array<string | number>) => ['models', index, 'modelMonitor', ...path];
  if (!model.dataCapture) ctx.addIssue({ code: 'custom', path: at(), message: `needs dataCapture: Model Monitor reads ${model.name}'s captured requests` });
  if (!monitor.dataQuality && !monitor.modelQuality && !monitor.bias && !monitor.explainability) {
    ctx.addIssue({ code: 'custom', path: at(), message: 'switch on at least one of dataQuality, modelQuality, bias, explainability' });
  }
  const headers = monitor.headers ?? [];
  for (const kind of ['bias', 'explainability'] as const) {
    if (monitor[kind] && headers.length === 0) ctx.addIssue({ code: 'custom', path: at('headers'), message: `${kind} monitoring needs the feature names of the captured CSV` });
  }
  monitor.bias?.facets.forEach((facet, facetIndex) => {
    if (headers.length > 0 && !headers.includes(facet.name)) ctx.addIssue({ code: 'custom', path: at('bias', 'facets', facetIndex, 'name'), message: `'${facet.name}' is not one of headers (${headers.join(', ')})` });
  });
  if (monitor.explainability && headers.length > 0 && monitor.explainability.shapBaseline.length !== headers.length) {
    ctx.addIssue({ code: 'custom', path: at('explainability', 'shapBaseline'), message: `needs one value per header (${headers.length}); got ${monitor.explainability.shapBaseline.length}` });
  }
  for (const kind of ['modelQuality', 'bias'] as const) {
    const section = monitor[kind];
    if (section && section.inferenceAttribute === undefined && section.probabilityAttribute === undefined) {
      ctx.addIssue({ code: 'custom', path: at(kind), message: 'give inferenceAttribute or probabilityAttribute (where the prediction is in the captured output)' });
    }
  }
  Object.keys(monitor.featureDriftThresholds).forEach((feature) => {
    if (!monitor.dataQuality) ctx.addIssue({ code: 'custom', path: at('featureDriftThresholds', feature), message: 'needs dataQuality monitoring' });
    else if (headers.length > 0 && !headers.includes(feature)) ctx.addIssue({ code: 'custom', path: at('featureDriftThresholds', feature), message: `'${feature}' is not one of headers (${headers.join(', ')})` });
  });
  if ((monitor.bias || monitor.explainability) && model.variants.every((variant) => variant.capacity.kind === 'serverless')) {
    ctx.addIssue({ code: 'custom', path: at(monitor.bias ? 'bias' : 'explainability'), message: 'Clarify needs an instance-based production variant to start its shadow endpoint from' });
  }
}
