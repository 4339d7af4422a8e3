// Feature Store in an application team's own stack. The README shows this function; the tests
// type-check and synthesize it. In your project, import from 'cdk-ml-patterns'.
import { Stack } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import { FeatureGroup, FeatureIngestion, OfflineFeatureQueries } from '../lib';

export function featureStore(stack: Stack, key: kms.IKey, topic: sns.ITopic, offline: s3.IBucket, landing: s3.IBucket): FeatureIngestion {
  const orders = new FeatureGroup(stack, 'OrderFeatures', {
    definition: {
      name: 'order-features',
      description: 'Order history of each customer, for the recommender.',
      owner: 'growth-data',
      recordIdentifier: 'customer_id',
      eventTime: 'event_time',
      onlineTtlHours: 24 * 90,
      features: [
        { name: 'customer_id', type: 'string', description: 'Customer account id.' },
        { name: 'event_time', type: 'string', description: 'When the values were observed, ISO-8601 in UTC.' },
        { name: 'orders_90d', type: 'integral', description: 'Orders placed in the last 90 days.' },
        { name: 'basket_value_avg', type: 'fractional', description: 'Mean basket value over the last 90 days, in EUR.' },
      ],
    },
    encryptionKey: key,
    offlineStoreBucket: offline,
  });
  new OfflineFeatureQueries(stack, 'FeatureQueries', { encryptionKey: key });
  // Speed layer: put {"featureGroup":"order-features","record":{...}} on the stream.
  // Batch layer: start the workflow with {"featureGroup":"order-features","prefix":"orders/2026-11-26/","format":"csv"}.
  return new FeatureIngestion(stack, 'FeatureIngestion', { featureGroups: [orders], landingBucket: landing, encryptionKey: key, notificationTopic: topic });
}
