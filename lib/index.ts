// Public API of cdk-ml-patterns: re-exports only.

// core: security and operations building blocks
export * from './core/alarm-topic';
export * from './core/data-key';
export * from './core/managed-policy-role';
export * from './core/sagemaker-execution-role';
export * from './core/secure-bucket';

// serving: model serving and real-time inference (seed patterns 2 and 11)
export * from './serving/endpoint-alarms';
export * from './serving/model-data';
export * from './serving/model-endpoint';
export * from './serving/real-time-inference-api';

// monitoring: dashboards
export * from './monitoring/endpoint-widgets';
export * from './monitoring/platform-dashboard';
