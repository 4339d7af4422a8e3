// Client silos of a federation in moto, for the round function's tests and the coordinator workflow's: moto maps
// the credentials of an STS AssumeRole to the role's account, so each silo's exchange bucket and settings
// parameter are created as that silo (its assumed role, in its region), and its training container is played by
// putting the job's model.tar.gz where SageMaker would (moto's training jobs complete at once).
import { CreateBucketCommand, PutObjectCommand, S3Client, type BucketLocationConstraint } from '@aws-sdk/client-s3';
import { DescribeTrainingJobCommand, SageMakerClient } from '@aws-sdk/client-sagemaker';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import type { FederationClientSpec } from '../../lambda/federated-round';
import { writeTarGz, type TarFile } from '../../lambda/shared/tar';
import { sdkTestConfig } from './moto';

/** What a silo's settings parameter holds, for a silo named in the tests. */
export const siloSettings = (silo: FederationClientSpec) => ({
  exchangeBucket: `${silo.name}-fl-exchange`,
  keyArn: `arn:aws:kms:${silo.region}:${silo.account}:key/${silo.account.slice(0, 8)}-aaaa-bbbb-cccc-000000000001`,
  trainingRoleArn: `arn:aws:iam::${silo.account}:role/churn-training`,
  dataUri: `s3://${silo.name}-churn-data/train/`,
});

/** What a client's training container writes in update.json. */
export interface Update {
  readonly sampleCount: number;
  readonly update: readonly number[];
  readonly metrics?: Record<string, number>;
}

/** The files of a job's model.tar.gz: the update and a log beside it. */
export const updateFiles = (update: Update): TarFile[] => [
  { name: './update.json', data: JSON.stringify(update) },
  { name: './training-log.txt', data: 'epoch 1 loss 0.4\nepoch 2 loss 0.3\n' },
];

/** A client silo as the test sees it: its own account and region, through its assumed role. */
export interface SiloClients {
  readonly s3: S3Client;
  readonly ssm: SSMClient;
  readonly sagemaker: SageMakerClient;
  destroy(): void;
}

/** The silos of one moto server. */
export class MotoSilos {
  private readonly sts: STSClient;

  constructor(private readonly endpoint: string) {
    this.sts = new STSClient(sdkTestConfig(endpoint));
  }

  /** Runs `fn` with clients of the silo's account and region. */
  public async withClient<T>(silo: FederationClientSpec, fn: (clients: SiloClients) => Promise<T>): Promise<T> {
    const { Credentials } = await this.sts.send(new AssumeRoleCommand({ RoleArn: silo.roleArn, RoleSessionName: 'test-silo-admin' }));
    const config = {
      endpoint: this.endpoint,
      region: silo.region,
      credentials: { accessKeyId: Credentials!.AccessKeyId!, secretAccessKey: Credentials!.SecretAccessKey!, sessionToken: Credentials!.SessionToken! },
    };
    const clients = { s3: new S3Client({ ...config, forcePathStyle: true }), ssm: new SSMClient(config), sagemaker: new SageMakerClient(config) };
    try {
      return await fn({ ...clients, destroy: () => undefined });
    } finally {
      Object.values(clients).forEach((sdk) => sdk.destroy());
    }
  }

  /** Creates the silo's exchange bucket and its settings parameter, as the silo; `settings` replaces the parameter's value. */
  public async prepare(silo: FederationClientSpec, settings: unknown = siloSettings(silo)): Promise<void> {
    await this.withClient(silo, async ({ s3, ssm }) => {
      const bucket = siloSettings(silo).exchangeBucket;
      await s3.send(new CreateBucketCommand({ Bucket: bucket, ...(silo.region === 'us-east-1' ? {} : { CreateBucketConfiguration: { LocationConstraint: silo.region as BucketLocationConstraint } }) }));
      await ssm.send(new PutParameterCommand({ Name: silo.settingsParameter, Type: 'String', Value: typeof settings === 'string' ? settings : JSON.stringify(settings) }));
    });
  }

  /**
   * Plays the client's training container: puts model.tar.gz where SageMaker puts the job's output (its
   * S3ModelArtifacts, as moto recorded the job in the client's account and region). Returns that URI.
   */
  public async deliver(silo: FederationClientSpec, jobName: string, files: readonly TarFile[]): Promise<string> {
    return this.withClient(silo, async ({ s3, sagemaker }) => {
      const job = await sagemaker.send(new DescribeTrainingJobCommand({ TrainingJobName: jobName }));
      const location = /^s3:\/\/([^/]+)\/(.+)$/.exec(job.ModelArtifacts!.S3ModelArtifacts!)!;
      await s3.send(new PutObjectCommand({ Bucket: location[1], Key: location[2], Body: writeTarGz(files) }));
      return job.ModelArtifacts!.S3ModelArtifacts!;
    });
  }

  public destroy(): void {
    this.sts.destroy();
  }
}
