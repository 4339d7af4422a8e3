import { churnLifecycle } from './churn-lifecycle';
import { customerChurnFeatures } from './feature-groups';
import { ragGuardrail, ragPrompt } from './rag-prompt';
import type { PlatformConfigInput } from './schema';

/**
 * dev: lowest idle cost. Serverless inference scales to zero, there is no VPC (serverless endpoints
 * cannot use one) and no WAF, and data is destroyed with the stacks.
 */
export const dev: PlatformConfigInput = {
  envName: 'dev',
  region: 'us-east-1',
  retainData: false,
  logRetentionDays: 30,
  alarmEmails: [],
  network: { vpc: false },
  api: { throttlingRateLimit: 20, throttlingBurstLimit: 40, reservedConcurrency: 5, waf: false },
  models: [
    {
      name: 'churn',
      description: 'Customer churn propensity (XGBoost binary classifier).',
      networkIsolation: false,
      variants: [
        {
          name: 'champion',
          model: {
            version: '1.0.0',
            image: '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1',
            modelData: { key: 'churn/1.0.0/model.tar.gz' },
          },
          capacity: { kind: 'serverless', memorySizeInMb: 2048, maxConcurrency: 5 },
        },
      ],
      // Every version that passes the gate deploys at once; a dataset marker starts a run.
      lifecycle: { ...churnLifecycle, approval: 'automatic', trainOnDataArrival: true, batchInference: { instanceType: 'ml.m5.large', inputFilter: '$[1:]', outputFilter: '$[0,-1]' } },
    },
  ],
  featureStore: { groups: [{ ...customerChurnFeatures, onlineTtlHours: 24 * 30 }], batchConcurrency: 2 },
  rag: {
    // One small node in one zone, public endpoint behind fine-grained access control: the cheapest useful domain.
    domain: { dataNodes: 1, dataNodeInstanceType: 't3.medium.search', ebsVolumeSizeGiB: 10, availabilityZoneCount: 1 },
    index: { name: 'documents', dimension: 1024, engine: 'faiss', spaceType: 'l2' },
    chunking: { size: 1000, overlap: 150 },
    embeddingModelId: 'amazon.titan-embed-text-v2:0',
    generationModelId: 'anthropic.claude-3-haiku-20240307-v1:0',
    retrieval: { topK: 4, scoreFloor: 0.4, hybrid: false },
    prompt: { ...ragPrompt, pinnedVersion: '1' },
    guardrail: { ...ragGuardrail, interventionsAlarmThreshold: 20 },
  },
};
