// The prediction cache in an application team's own stack. The README shows the function; the tests
// type-check and synthesize it. In your project, import from 'cdk-ml-patterns'.
import { Duration, Stack } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import { ModelEndpoint, RealTimeInferenceApi } from '../lib';

export function cachedScoring(stack: Stack, key: kms.IKey, endpoint: ModelEndpoint): RealTimeInferenceApi {
  // An in-memory tier in each function instance (32 MiB) in front of a DynamoDB table shared by all of them.
  const api = new RealTimeInferenceApi(stack, 'Scoring', { encryptionKey: key, predictionCache: { memorySizeMiB: 32 } });
  api.addEndpoint(endpoint, { cacheTtl: Duration.minutes(5) });
  return api;
}
