import { churnLifecycle } from './churn-lifecycle';
import { churnModelCard } from './churn-model-card';
import { customerChurnFeatures } from './feature-groups';
import { ragGuardrail, ragPrompt } from './rag-prompt';
import type { PlatformConfigInput } from './schema';

/**
 * prod: resilience first. Multi-instance variants spread across Availability Zones with
 * autoscaling, canary deployment guardrails, a shadow candidate judged by the shadow comparison
 * workflow, a VPC with network isolation, data capture for Model Monitor, WAF, long log
 * retention, and every stateful resource retained.
 */
export const prod: PlatformConfigInput = {
  envName: 'prod',
  region: 'us-east-1',
  retainData: true,
  logRetentionDays: 365,
  alarmEmails: [],
  network: { vpc: true, availabilityZones: ['us-east-1a', 'us-east-1b', 'us-east-1c'] },
  api: { throttlingRateLimit: 500, throttlingBurstLimit: 1000, reservedConcurrency: 100, waf: true, predictionLog: true, predictionLogRetentionDays: 180, predictionCache: {}, circuitBreakers: true, precomputedPredictions: true },
  // What every prod model family does unless it says otherwise: capture for Model Monitor, page on
  // errors and latency, roll out behind a canary, watch drift. A family sets only what differs.
  modelDefaults: {
    dataCapture: { samplingPercentage: 20 },
    alarms: { error5xxRatePercent: 0.5, modelLatencyP99Ms: 300, anomalyDetection: true, pageOncePerIncident: true },
    // A new model version reaches 10% of capacity first and bakes for 10 minutes under the alarms.
    deploymentGuardrails: { mode: 'canary', percent: 10, waitMinutes: 10 },
    driftDetection: { intervalMinutes: 10, psiThreshold: 0.2 },
  },
  models: [
    {
      name: 'churn',
      description: 'Customer churn propensity (XGBoost binary classifier).',
      // A customer's churn score changes with their features, which change daily: five minutes of cached answers
      // spare the endpoint the repeated calls of one session. One production variant, so every request can
      // be cached; a hit also skips the shadow variant's mirrored copy of the request.
      cache: { ttlSeconds: 300 },
      // When the endpoint fails (half of at least 20 calls in a minute, per instance), stop calling it for 30 s
      // and answer with the base rate, marked degraded: the callers treat churn scores as advisory.
      circuitBreaker: {},
      fallback: { staticAnswer: { score: 0.08, basis: 'base churn rate' } },
      variants: [
        {
          name: 'champion',
          model: {
            version: '1.0.0',
            image: '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1',
            modelData: { key: 'churn/1.0.0/model.tar.gz' },
          },
          capacity: {
            kind: 'instance',
            instanceType: 'ml.c5.xlarge',
            initialInstanceCount: 2,
            autoscaling: { minCapacity: 2, maxCapacity: 8, targetInvocationsPerInstance: 750 },
          },
        },
      ],
      shadowVariants: [
        {
          name: 'candidate',
          samplingPercentage: 20,
          model: {
            version: '1.1.0',
            image: '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1',
            modelData: { key: 'churn/1.1.0/model.tar.gz' },
          },
          capacity: { kind: 'instance', instanceType: 'ml.c5.xlarge', initialInstanceCount: 1 },
        },
      ],
      modelMonitor: {
        headers: ['tenure_months', 'monthly_charges', 'support_tickets_30d', 'contract_type'],
        dataQuality: { schedule: 'hourly' },
        modelQuality: {
          schedule: 'daily@02',
          problemType: 'BinaryClassification',
          probabilityAttribute: '0',
          probabilityThreshold: 0.5,
          groundTruthAttribute: 'churned',
          minimums: { f1: 0.7, recall: 0.6 },
        },
        bias: {
          schedule: 'daily@03',
          label: 'churned',
          labelValuesOrThreshold: [1],
          facets: [{ name: 'contract_type', valuesOrThreshold: ['month-to-month'] }],
          probabilityAttribute: '0',
          probabilityThreshold: 0.5,
        },
        explainability: { schedule: 'daily@04', shapBaseline: [24, 65.5, 1, 'one-year'], probabilityAttribute: '0' },
        featureDriftThresholds: { tenure_months: 0.2, monthly_charges: 0.2, support_tickets_30d: 0.3, contract_type: 0.2 },
        // A retraining takes a day and its canary another: at most one per three days.
        retrainingCooldownHours: 72,
        modelCard: churnModelCard,
      },
      // A person approves each version; the deployment then follows the canary guardrails above.
      lifecycle: {
        ...churnLifecycle,
        retrainSchedule: 'cron(0 4 ? * SUN *)',
        // Each dataset is checked against churn/constraints/constraints.json before preprocessing.
        dataValidation: { format: 'csv' },
        // Streamed labelled outcomes fine-tune the approved version on each window of 20 000 validated records, at
        // most every three days (the canary's pace), and only a model that beats it on the window is registered.
        incrementalTraining: { minRecords: 20_000, cooldownMinutes: 72 * 60, checkSchedule: 'rate(30 minutes)', hyperparameters: { num_round: '50' } },
        // Every customer scored nightly: a request naming a customer is answered from the night's run for 26
        // hours (then asked in real time); an older answer still serves while the endpoint fails.
        batchInference: {
          instanceType: 'ml.m5.xlarge',
          instanceCount: 2,
          inputFilter: '$[1:]',
          outputFilter: '$[0,-1]',
          schedule: 'cron(0 2 * * ? *)',
          precomputed: { featureGroup: 'customer-churn-features', recordIdField: '0', maxAgeHours: 26, ttlHours: 72 },
        },
      },
      experiments: {
        shadowComparison: { observationMinutes: 120, maxErrorRate: 0.005, maxLatencyMs: 300 },
      },
    },
  ],
  featureStore: { groups: [customerChurnFeatures], batchConcurrency: 20 },
  rag: {
    // Multi-AZ with dedicated masters; the domain, index and logs are retained with the environment's data.
    domain: {
      dataNodes: 3,
      dataNodeInstanceType: 'r6g.large.search',
      masterNodes: 3,
      masterNodeInstanceType: 'm6g.large.search',
      ebsVolumeSizeGiB: 100,
      availabilityZoneCount: 3,
    },
    index: { name: 'documents', dimension: 1024, engine: 'faiss', spaceType: 'l2', replicas: 1 },
    chunking: { size: 1000, overlap: 150 },
    embeddingModelId: 'amazon.titan-embed-text-v2:0',
    generationModelId: 'anthropic.claude-3-haiku-20240307-v1:0',
    retrieval: { topK: 5, scoreFloor: 0.45, hybrid: true },
    prompt: { ...ragPrompt, pinnedVersion: '1' },
    guardrail: { ...ragGuardrail, interventionsAlarmThreshold: 10 },
  },
};
