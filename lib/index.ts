// Public API of cdk-ml-patterns: re-exports only.

// core: security and operations building blocks
export * from './core/alarm-topic';
export * from './core/data-key';
export * from './core/input-validation';
export * from './core/managed-policy-role';
export * from './core/ml-function';
export * from './core/ml-workflow';
export * from './core/sagemaker-execution-role';
export * from './core/secure-bucket';
export * from './core/workflow-options';

// serving: model serving and real-time inference (seed patterns 2 and 11)
export * from './serving/composite-route';
export * from './serving/endpoint-alarms';
export * from './serving/inference-route';
export * from './serving/model-data';
export * from './serving/model-endpoint';
export * from './serving/inference-state-table';
export * from './serving/real-time-inference-api';

// experiments: shadow mode, A/B testing, champion-challenger (seed patterns 3, 4 and 5)
export * from './experiments/ab-test-analysis';
export * from './experiments/champion-challenger-promotion';
export * from './experiments/online-allocation';
export * from './experiments/prediction-log';
export * from './experiments/shadow-comparison';
export type { ExperimentWorkflowOptions, VariantGuardrailOptions } from './experiments/experiment-options';
export { EXPERIMENTS_METRICS_NAMESPACE } from './experiments/private/experiment-metrics';

// lifecycle: training pipeline, model registry, deployment, retirement, batch inference (seed patterns 7, 10, 13, 15 and 16)
export * from './lifecycle/data-validation';
export * from './lifecycle/batch-inference';
export * from './lifecycle/federated-client';
export * from './lifecycle/federated-coordinator';
export * from './lifecycle/incremental-training';
export * from './lifecycle/model-deployment';
export * from './lifecycle/model-package-group';
export * from './lifecycle/model-retirement';
export * from './lifecycle/training-pipeline';

// features: Feature Store and its ingestion (seed pattern 6, Lambda architecture for ML)
export * from './features/feature-catalogue';
export * from './features/feature-definition';
export * from './features/feature-group';
export * from './features/feature-ingestion';
export * from './features/offline-feature-queries';

// monitoring: near-real-time drift and dashboards (seed patterns 8 and 9)
export * from './monitoring/drift-detector';
export * from './monitoring/drift-widgets';
export * from './monitoring/endpoint-widgets';
export * from './monitoring/experiment-widgets';
export * from './monitoring/feature-store-widgets';
export { fleetOverviewWidgets, MAX_ALARMS_PER_STATUS_WIDGET, type FleetOverviewOptions } from './monitoring/fleet-widgets';
export * from './monitoring/platform-dashboard';
export * from './monitoring/rag-widgets';

// genai: retrieval-augmented generation with Bedrock and OpenSearch, prompt management and guardrails (seed patterns 1, 22 and 23)
export * from './genai/document-ingestion';
export * from './genai/knn-index';
export * from './genai/prompt-template';
export * from './genai/rag-api';
export * from './genai/rag-guardrail';
export * from './genai/vector-knowledge-base';

// monitoring: SageMaker Model Monitor, retraining on violations, model cards (seed patterns 9, 21 and 22)
export * from './monitoring/model-card';
export * from './monitoring/model-monitor';
export * from './monitoring/model-monitor-widgets';
export * from './monitoring/monitoring-alarms';
export * from './monitoring/monitoring-baseline-workflow';
export * from './monitoring/retraining-trigger';
