// Circuit breakers with fallbacks, and precomputed answers, in an application team's own stack. The README
// shows the functions; the tests type-check and synthesize them. In your project, import from 'cdk-ml-patterns'.
import { Duration, Stack } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import { ModelEndpoint, RealTimeInferenceApi } from '../lib';

export function guardedScoring(stack: Stack, key: kms.IKey, endpoint: ModelEndpoint): RealTimeInferenceApi {
  const api = new RealTimeInferenceApi(stack, 'Scoring', { encryptionKey: key, circuitBreakers: true });
  api.addEndpoint(endpoint, {
    // Opens when more than 30% of at least 50 calls in 2 minutes failed; probes again after 20 seconds.
    circuitBreaker: { failureRateThreshold: 0.3, minimumCalls: 50, window: Duration.minutes(2), coolDown: Duration.seconds(20) },
    // A simpler model on another variant first, then the base rate.
    fallback: { variant: 'simple', staticAnswer: { score: 0.08, basis: 'base churn rate' } },
  });
  return api;
}

export function precomputedScoring(stack: Stack, key: kms.IKey, endpoint: ModelEndpoint): RealTimeInferenceApi {
  // The state table the nightly BatchInference loads (api.stateTable.table is its `precomputed.table`).
  const api = new RealTimeInferenceApi(stack, 'Scoring', { encryptionKey: key, precomputedPredictions: true });
  api.addEndpoint(endpoint, { precomputedMaxAge: Duration.hours(26) });
  return api;
}
