import { CfnOutput, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import type { LifecycleConfig } from '../../config/lifecycle-schema';
import type { PlatformConfig } from '../../config/schema';
import { DataKey } from '../core/data-key';
import { SecureBucket } from '../core/secure-bucket';
import { FederatedClient } from '../lifecycle/federated-client';

type FederatedConfig = NonNullable<LifecycleConfig['federated']>;

export interface FederatedClientStackProps extends StackProps {
  readonly config: PlatformConfig;
  /** The family whose federation this silo is part of. */
  readonly family: string;
  readonly federated: FederatedConfig;
  readonly client: FederatedConfig['clients'][number];
}

/** Name of the stack of one silo: `MlPlatform-<env>-<family>-Silo-<client>`. */
export function federatedClientStackName(envName: string, family: string, client: string): string {
  return `MlPlatform-${envName}-${family}-Silo-${client}`;
}

/**
 * One client silo of a family's federation, deployed in the silo's own account and region
 * (`cdk deploy MlPlatform-<env>-<family>-Silo-<name>` with the silo's credentials): its key, its data bucket
 * (created here unless the config names an existing one) and the FederatedClient the coordinator reaches.
 */
export class FederatedClientStack extends Stack {
  public readonly client: FederatedClient;
  /** The family whose federation this silo is part of. */
  public readonly family: string;
  /** The data bucket, when this stack created it. */
  public readonly dataBucket?: s3.Bucket;

  constructor(scope: Construct, id: string, props: FederatedClientStackProps) {
    super(scope, id, props);
    const { config, family, federated, client } = props;
    this.family = family;
    const removalPolicy = config.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    const key = new DataKey(this, 'Key', { description: `Federated learning silo ${client.name} of ${family}: data and exchange`, removalPolicy });
    let bucket: s3.IBucket;
    if (client.data.bucketName === undefined) {
      this.dataBucket = new SecureBucket(this, 'SiloData', { encryptionKey: key, removalPolicy }).bucket;
      bucket = this.dataBucket;
    } else {
      bucket = s3.Bucket.fromBucketName(this, 'SiloData', client.data.bucketName);
    }
    this.client = new FederatedClient(this, 'Client', {
      federationName: family,
      coordinatorAccount: federated.coordinatorAccount ?? config.account!,
      accessRoleName: federated.accessRoleName,
      data: { bucket, prefix: client.data.prefix },
      trainingImage: client.trainingImage ?? federated.training.image,
      encryptionKey: key,
      removalPolicy,
    });
    new CfnOutput(this, 'AccessRoleArn', { value: this.client.accessRole.roleArn, description: `The role the coordinator of ${family} assumes in this silo` });
    new CfnOutput(this, 'ExchangeBucket', { value: this.client.exchangeBucket.bucketName, description: 'Global models (global/) and model updates (updates/)' });
    new CfnOutput(this, 'DataUri', { value: this.client.dataUri, description: 'Where the training jobs read the silo data' });
  }
}
