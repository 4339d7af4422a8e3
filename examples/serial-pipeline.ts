// A serial inference pipeline in an application team's own stack. The README shows the function; the tests
// type-check and synthesize it. In your project, import from 'cdk-ml-patterns'.
import { Stack } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { ModelData, ModelEndpoint } from '../lib';

export function preprocessedScoring(stack: Stack, key: kms.IKey, artifacts: s3.IBucket): ModelEndpoint {
  // One SageMaker model of three containers on the same instances: each request passes through them in
  // order, and the caller gets the last one's answer.
  return new ModelEndpoint(stack, 'Scorer', {
    modelName: 'scorer',
    encryptionKey: key,
    variants: [
      {
        name: 'champion',
        model: {
          version: '2.0.0',
          containers: [
            {
              containerHostname: 'preprocess',
              image: '141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3',
              modelData: ModelData.fromBucket(artifacts, 'scorer/2.0.0/preprocess.tar.gz'),
              environment: { SAGEMAKER_PROGRAM: 'preprocess.py', SAGEMAKER_SUBMIT_DIRECTORY: '/opt/ml/model/code' },
            },
            {
              containerHostname: 'model',
              image: '141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1',
              modelData: ModelData.fromBucket(artifacts, 'scorer/2.0.0/model.tar.gz'),
            },
            { containerHostname: 'postprocess', image: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/scorer-postprocess:2.0.0' },
          ],
        },
        capacity: { kind: 'instance', instanceType: 'ml.c5.xlarge', initialInstanceCount: 2 },
      },
    ],
  });
}
