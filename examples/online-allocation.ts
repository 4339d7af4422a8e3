// Online allocation in an application team's own stack: a bandit that moves an endpoint's traffic toward the
// variant whose predictions convert best, from the outcomes the inference API logs. The README shows the
// function; the tests type-check and synthesize it. In your project, import from 'cdk-ml-patterns'.
import { Duration } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { BanditStrategy, OnlineAllocation, type ModelEndpoint, type PredictionLog } from '../lib';

export function offersBandit(scope: Construct, endpoint: ModelEndpoint, log: PredictionLog, topic: sns.ITopic, key: kms.IKey): OnlineAllocation {
  return new OnlineAllocation(scope, 'OffersBandit', {
    endpoint, // two to ten production variants: the arms
    predictionLog: log, // POST /models/offers/outcomes records { "converted": true } against each prediction
    outcomeType: 'binary',
    strategy: BanditStrategy.THOMPSON,
    minShare: 0.1, // every ranker keeps 10% of the traffic, so none stops learning
    maxStep: 0.1, // and no weight moves more than 10 points an hour
    minObservations: 200,
    outcomeDelay: Duration.days(1), // a customer converts within a day or not at all
    schedule: scheduler.ScheduleExpression.rate(Duration.hours(1)),
    bakeTime: Duration.minutes(15), // then the endpoint's alarms are read; one in ALARM puts the old weights back
    notificationTopic: topic,
    encryptionKey: key,
  });
}
