import type { PlatformConfigInput } from './schema';

type LifecycleInput = NonNullable<PlatformConfigInput['models'][number]['lifecycle']>;

const SKLEARN = '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3';
const XGBOOST = '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1';

/**
 * The churn model's lifecycle, shared by every environment: preprocessing and evaluation scripts in
 * the scikit-learn container, XGBoost training, and a gate on the test-set AUC.
 */
export const churnLifecycle: LifecycleInput = {
  preprocessing: { image: SKLEARN, instanceType: 'ml.m5.large', entrypoint: ['python3', '/opt/ml/processing/code/preprocess.py'], maxRuntimeMinutes: 60 },
  training: {
    image: XGBOOST,
    instanceType: 'ml.m5.xlarge',
    maxRuntimeMinutes: 120,
    hyperparameters: { objective: 'binary:logistic', num_round: '200', max_depth: '5', eta: '0.2', eval_metric: 'auc' },
    metricDefinitions: [{ name: 'validation:auc', regex: 'validation-auc:([0-9\\.]+)' }],
  },
  evaluation: {
    image: SKLEARN,
    instanceType: 'ml.m5.large',
    entrypoint: ['python3', '/opt/ml/processing/code/evaluate.py'],
    maxRuntimeMinutes: 30,
    metric: 'binary_classification_metrics.auc.value',
    threshold: 0.8,
  },
};
