// Composite models in an application team's own stack: an ensemble, a cascade and a chain over models the
// API serves. The README shows the function; the tests type-check and synthesize it, and run the route
// documents it makes through the handler's own schema. In your project, import from 'cdk-ml-patterns'.
import { Duration } from 'aws-cdk-lib';
import { EnsembleCombiner, OutputField, type InferenceRoute, type RealTimeInferenceApi } from '../lib';

export function fraudComposites(api: RealTimeInferenceApi, lite: InferenceRoute, deep: InferenceRoute, ranker: InferenceRoute): void {
  // The mean of two variants' scores and another model's: served at POST /models/fraud-blend/predict.
  api.addEnsemble('fraud-blend', {
    members: [
      { model: deep, variant: 'champion', weight: 2 },
      { model: deep, variant: 'challenger' },
      { model: lite },
    ],
    combiner: EnsembleCombiner.WEIGHTED_MEAN,
    output: OutputField.jsonPointer('/predictions/0/score'),
    quorum: 2, // one member may fail or time out; the answer is then marked degraded
    timeout: Duration.millis(800),
  });
  // The cheap model answers when it is sure either way; otherwise the deep one does.
  api.addCascade('fraud-tiered', {
    stages: [
      { model: lite, confidence: OutputField.jsonPointer('/predictions/0/confidence'), threshold: 0.9 },
      { model: deep },
    ],
  });
  // Candidates from the deep model, then ranked with the request's user.
  api.addChain('fraud-review-queue', {
    stages: [
      { model: deep },
      { model: ranker, input: { user: '/request/user', candidates: '/previous/candidates' } },
    ],
  });
}
