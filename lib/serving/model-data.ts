import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

/** Where a model's artifact (`model.tar.gz`) lives, and how to let SageMaker read it. */
export abstract class ModelData {
  /** An object in a bucket you manage in CDK; read access is granted on that one object. */
  public static fromBucket(bucket: s3.IBucket, key: string): ModelData {
    return new BucketModelData(bucket, key);
  }

  /**
   * An object addressed by its S3 URI, in a bucket CDK does not manage.
   * @param encryptionKey the KMS key that encrypts the object, if it is SSE-KMS
   */
  public static fromS3Uri(uri: string, encryptionKey?: kms.IKey): ModelData {
    const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
    if (!match) {
      throw new Error(`ModelData.fromS3Uri: '${uri}' is not an s3://bucket/key URI`);
    }
    return new UriModelData(match[1], match[2], encryptionKey);
  }

  /** Grants the role read access and returns the URI for `ModelDataUrl`. */
  public abstract bind(scope: Construct, grantee: iam.IGrantable): string;
}

class BucketModelData extends ModelData {
  constructor(
    private readonly bucket: s3.IBucket,
    private readonly key: string,
  ) {
    super();
  }

  public bind(_scope: Construct, grantee: iam.IGrantable): string {
    iam.Grant.addToPrincipal({ grantee, actions: ['s3:GetObject', 's3:GetObjectVersion'], resourceArns: [this.bucket.arnForObjects(this.key)] });
    this.bucket.encryptionKey?.grantDecrypt(grantee);
    return this.bucket.s3UrlForObject(this.key);
  }
}

class UriModelData extends ModelData {
  constructor(
    private readonly bucketName: string,
    private readonly key: string,
    private readonly encryptionKey?: kms.IKey,
  ) {
    super();
  }

  public bind(scope: Construct, grantee: iam.IGrantable): string {
    const partition = Stack.of(scope).partition;
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:GetObject', 's3:GetObjectVersion'],
      resourceArns: [`arn:${partition}:s3:::${this.bucketName}/${this.key}`],
    });
    this.encryptionKey?.grantDecrypt(grantee);
    return `s3://${this.bucketName}/${this.key}`;
  }
}
