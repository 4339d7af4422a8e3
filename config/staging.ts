import { churnFederated } from './churn-federated';
import { churnLifecycle } from './churn-lifecycle';
import { churnModelCard } from './churn-model-card';
import { customerChurnFeatures } from './feature-groups';
import { ragGuardrail, ragPrompt } from './rag-prompt';
import type { PlatformConfigInput } from './schema';

/**
 * staging: production-shaped at a smaller size. Instance-based variants in a VPC with network
 * isolation, a sticky 90/10 champion/challenger A/B test with its analysis and promotion workflows,
 * data capture for monitoring, and WAF on the API.
 */
export const staging: PlatformConfigInput = {
  envName: 'staging',
  region: 'us-east-1',
  retainData: false,
  logRetentionDays: 90,
  alarmEmails: [],
  network: { vpc: true, maxAzs: 2 },
  api: { throttlingRateLimit: 50, throttlingBurstLimit: 100, reservedConcurrency: 10, waf: true, predictionLog: true, predictionLogRetentionDays: 30, predictionCache: {}, precomputedPredictions: true },
  models: [
    {
      name: 'churn',
      description: 'Customer churn propensity (XGBoost binary classifier).',
      // A customer's churn score changes with their features, which change daily: five minutes of cached answers
      // spare the endpoint the repeated calls of one session. With the A/B test, only sticky callers and
      // targeted requests are cached (each arm on its own), so the cache never moves anyone between arms.
      cache: { ttlSeconds: 300 },
      dataCapture: { samplingPercentage: 100 },
      variants: [
        {
          name: 'champion',
          weight: 0.9,
          model: {
            version: '1.0.0',
            image: '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1',
            modelData: { key: 'churn/1.0.0/model.tar.gz' },
          },
          capacity: { kind: 'instance', instanceType: 'ml.m5.large', initialInstanceCount: 1 },
        },
        {
          name: 'challenger',
          weight: 0.1,
          model: {
            version: '1.1.0',
            image: '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1',
            modelData: { key: 'churn/1.1.0/model.tar.gz' },
          },
          capacity: { kind: 'instance', instanceType: 'ml.m5.large', initialInstanceCount: 1 },
        },
      ],
      alarms: { error5xxRatePercent: 2, modelLatencyP99Ms: 800, anomalyDetection: true, pageOncePerIncident: true },
      modelMonitor: {
        headers: ['tenure_months', 'monthly_charges', 'support_tickets_30d', 'contract_type'],
        dataQuality: { schedule: 'hourly' },
        modelQuality: {
          schedule: 'daily@02',
          problemType: 'BinaryClassification',
          probabilityAttribute: '0',
          probabilityThreshold: 0.5,
          groundTruthAttribute: 'churned',
          minimums: { f1: 0.6 },
        },
        featureDriftThresholds: { tenure_months: 0.3, monthly_charges: 0.3 },
        retrainingCooldownHours: 24,
        modelCard: churnModelCard,
      },
      driftDetection: { intervalMinutes: 15, psiThreshold: 0.2 },
      // Weekly retraining and dataset markers; an approved version becomes the challenger, which the promotion workflow then judges.
      lifecycle: {
        ...churnLifecycle,
        retrainSchedule: 'rate(7 days)',
        trainOnDataArrival: true,
        deployment: { targetVariant: 'challenger' },
        // Each dataset is checked against churn/constraints/constraints.json before preprocessing.
        dataValidation: { format: 'csv' },
        // Rounds of training in two subsidiaries' silos (config/churn-federated.ts); the global model is
        // registered in churn's model package group, where approval and deployment take over.
        federated: churnFederated,
        // Labelled outcomes streamed from the CRM: a window of 5 000 validated records fine-tunes the approved
        // version with 50 more boosting rounds, at most every 12 hours, and only if it beats that version on the window.
        incrementalTraining: { minRecords: 5000, cooldownMinutes: 12 * 60, hyperparameters: { num_round: '50' } },
        // The nightly scores (customer id, then churn score) are served to requests naming the customer.
        batchInference: {
          instanceType: 'ml.m5.xlarge',
          inputFilter: '$[1:]',
          outputFilter: '$[0,-1]',
          schedule: 'cron(0 3 * * ? *)',
          precomputed: { featureGroup: 'customer-churn-features', recordIdField: '0' },
        },
      },
      experiments: {
        // One customer sees one model for the whole test.
        stickyRouting: true,
        abTest: { outcomeType: 'binary', minimumDetectableEffect: 0.02 },
        promotion: { trafficSteps: [25, 50, 100], bakeMinutes: 15, maxErrorRate: 0.01, maxLatencyMs: 800 },
      },
    },
    {
      name: 'offers',
      description: 'Next-best-offer propensity: two candidate rankers, traffic allocated online by their conversions.',
      variants: [
        {
          name: 'ranker-a',
          weight: 0.5,
          model: { version: '3.2.0', image: '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1', modelData: { key: 'offers/3.2.0/model.tar.gz' } },
          capacity: { kind: 'instance', instanceType: 'ml.m5.large', initialInstanceCount: 1 },
        },
        {
          name: 'ranker-b',
          weight: 0.5,
          model: { version: '4.0.0', image: '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1', modelData: { key: 'offers/4.0.0/model.tar.gz' } },
          capacity: { kind: 'instance', instanceType: 'ml.m5.large', initialInstanceCount: 1 },
        },
      ],
      alarms: { error5xxRatePercent: 2, modelLatencyP99Ms: 500 },
      experiments: {
        // A customer converts on the offer within a day, or not at all: Thompson sampling on those outcomes moves at
        // most 10% of the traffic an hour toward the ranker that converts more, never below 10% for either.
        bandit: { outcomeType: 'binary', minShare: 0.1, maxStep: 0.1, minObservations: 200, outcomeDelayMinutes: 1440, firstWindowHours: 48, intervalMinutes: 60, bakeMinutes: 15 },
      },
    },
  ],
  // The mean of the champion's and the challenger's churn scores, beside the A/B test: a request to churn-blend
  // calls both variants (each through churn's cache) and is logged under churn-blend, so the test's arms are
  // untouched. A member slower than a second is dropped; one answer alone is served, marked degraded.
  composites: [
    {
      kind: 'ensemble',
      name: 'churn-blend',
      members: [
        { model: 'churn', variant: 'champion' },
        { model: 'churn', variant: 'challenger' },
      ],
      combiner: 'mean',
      output: { jsonPointer: '/predictions/0/score' },
      quorum: 1,
      timeoutMs: 1000,
    },
  ],
  featureStore: { groups: [customerChurnFeatures], batchConcurrency: 5 },
  rag: {
    domain: { dataNodes: 2, dataNodeInstanceType: 'r6g.large.search', ebsVolumeSizeGiB: 20, availabilityZoneCount: 2 },
    index: { name: 'documents', dimension: 1024, engine: 'faiss', spaceType: 'l2', replicas: 1 },
    chunking: { size: 1000, overlap: 150 },
    embeddingModelId: 'amazon.titan-embed-text-v2:0',
    generationModelId: 'anthropic.claude-3-haiku-20240307-v1:0',
    retrieval: { topK: 5, scoreFloor: 0.4, hybrid: true },
    prompt: { ...ragPrompt, pinnedVersion: '1' },
    guardrail: { ...ragGuardrail, interventionsAlarmThreshold: 10 },
  },
};
