import { RemovalPolicy, Stack, StackProps } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import type { PlatformConfig } from '../../config/schema';
import { SecureBucket } from '../core/secure-bucket';
import type { FeatureGroupDefinition } from '../features/feature-definition';
import { FeatureGroup } from '../features/feature-group';
import { FeatureIngestion } from '../features/feature-ingestion';
import { OfflineFeatureQueries } from '../features/offline-feature-queries';
import type { FoundationStack } from './foundation-stack';

export interface FeaturesStackProps extends StackProps {
  readonly config: PlatformConfig;
  readonly foundation: FoundationStack;
}

/** Feature Store: the feature groups of the config, their speed and batch ingestion, and offline queries. */
export class FeaturesStack extends Stack {
  public readonly featureGroups: FeatureGroup[];
  public readonly ingestion: FeatureIngestion;
  public readonly offlineQueries: OfflineFeatureQueries;
  /** Offline store (Iceberg tables) of every group. */
  public readonly offlineStoreBucket: s3.Bucket;
  /** Where batch-layer chunk files land before ingestion. */
  public readonly landingBucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: FeaturesStackProps) {
    super(scope, id, props);
    const { config, foundation } = props;
    const featureStore = config.featureStore!;
    const removalPolicy = config.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    const bucket = (bucketId: string) =>
      new SecureBucket(this, bucketId, { encryptionKey: foundation.dataKey, serverAccessLogsBucket: foundation.accessLogsBucket, removalPolicy }).bucket;
    this.offlineStoreBucket = bucket('OfflineStore');
    this.landingBucket = bucket('Landing');

    this.featureGroups = featureStore.groups.map(
      (definition) =>
        new FeatureGroup(this, `Group-${definition.name}`, {
          // The schema has checked every definition with checkFeatureGroupDefinition.
          definition: definition as FeatureGroupDefinition,
          encryptionKey: foundation.dataKey,
          offlineStoreBucket: this.offlineStoreBucket,
          removalPolicy,
          alarms: { action: foundation.alarmTopic.alarmAction },
        }),
    );
    this.ingestion = new FeatureIngestion(this, 'Ingestion', {
      featureGroups: this.featureGroups,
      landingBucket: this.landingBucket,
      encryptionKey: foundation.dataKey,
      notificationTopic: foundation.alarmTopic.topic,
      batchConcurrency: featureStore.batchConcurrency,
      vpc: foundation.vpc,
      logRetention: config.logRetentionDays as logs.RetentionDays,
      removalPolicy,
      alarmAction: foundation.alarmTopic.alarmAction,
    });
    this.offlineQueries = new OfflineFeatureQueries(this, 'OfflineQueries', {
      encryptionKey: foundation.dataKey,
      accessLogsBucket: foundation.accessLogsBucket,
      removalPolicy,
    });
  }
}
