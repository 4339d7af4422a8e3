// Experiment patterns in an application team's own stack. The README shows each function; the tests
// type-check and synthesize them. In your project, import from 'cdk-ml-patterns'.
import { Duration, Stack } from 'aws-cdk-lib';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import { AbTestAnalysis, ChampionChallengerPromotion, ModelEndpoint, PredictionLog, RealTimeInferenceApi, ShadowComparison } from '../lib';

const IMAGE = '141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1';
const instances = { kind: 'instance' as const, instanceType: 'ml.c5.xlarge', initialInstanceCount: 2 };

export function shadowMode(stack: Stack, key: kms.IKey, topic: sns.ITopic, reports: s3.IBucket): ShadowComparison {
  // The candidate receives a copy of 30% of production traffic; callers only see production's answers.
  const endpoint = new ModelEndpoint(stack, 'Ranker', {
    modelName: 'ranker',
    encryptionKey: key,
    variants: [{ name: 'production', model: { version: '4.0.0', image: IMAGE }, capacity: instances }],
    shadowVariants: [{ name: 'candidate', samplingPercentage: 30, model: { version: '4.1.0', image: IMAGE }, capacity: instances }],
    dataCapture: { samplingPercentage: 100 },
  });
  // Start it from the console: observes both variants, then writes promote-ready or why not.
  return new ShadowComparison(stack, 'RankerShadow', {
    endpoint,
    observationTime: Duration.hours(2),
    maxLatency: Duration.millis(250),
    verdictBucket: reports,
    notificationTopic: topic,
    encryptionKey: key,
  });
}

export function abTest(stack: Stack, key: kms.IKey, topic: sns.ITopic): AbTestAnalysis {
  const endpoint = new ModelEndpoint(stack, 'Offers', {
    modelName: 'offers',
    encryptionKey: key,
    variants: [
      { name: 'champion', weight: 50, model: { version: '2.3.0', image: IMAGE }, capacity: instances },
      { name: 'challenger', weight: 50, model: { version: '2.4.0', image: IMAGE }, capacity: instances },
    ],
  });
  // Every prediction is logged; POST /models/offers/outcomes records whether the offer converted.
  const predictionLog = new PredictionLog(stack, 'PredictionLog', { encryptionKey: key });
  const api = new RealTimeInferenceApi(stack, 'OffersApi', { encryptionKey: key, predictionLog });
  api.addEndpoint(endpoint, { stickyRouting: true });
  // Two-proportion z-test on conversions, sized to detect a 2-point lift with 80% power.
  return new AbTestAnalysis(stack, 'OffersAbTest', {
    modelName: 'offers',
    predictionLog,
    outcomeType: 'binary',
    minimumDetectableEffect: 0.02,
    notificationTopic: topic,
    encryptionKey: key,
  });
}

export function championChallenger(stack: Stack, key: kms.IKey, topic: sns.ITopic, alarms: sns.ITopic): ChampionChallengerPromotion {
  const endpoint = new ModelEndpoint(stack, 'Fraud', {
    modelName: 'fraud',
    encryptionKey: key,
    variants: [
      { name: 'champion', weight: 95, model: { version: '7.0.0', image: IMAGE }, capacity: instances },
      { name: 'challenger', weight: 5, model: { version: '7.1.0', image: IMAGE }, capacity: instances },
    ],
    alarms: { actions: {}, error5xxRatePercent: 0.5, modelLatencyP99Ms: 150 },
  });
  // 5% -> 25% -> 50% -> 100%, each step baked for 30 minutes under the endpoint's alarms; any alarm
  // or a guardrail breach sends all traffic back to the champion.
  return new ChampionChallengerPromotion(stack, 'FraudPromotion', {
    endpoint,
    trafficSteps: [25, 50, 100],
    bakeTime: Duration.minutes(30),
    maxErrorRate: 0.005,
    maxLatency: Duration.millis(150),
    notificationTopic: topic,
    encryptionKey: key,
    failureAlarmAction: new SnsAction(alarms),
  });
}
