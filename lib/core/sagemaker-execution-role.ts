import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { acknowledgeWildcardResource } from './private/nag';
import { ManagedPolicyRole } from './managed-policy-role';

export interface SageMakerExecutionRoleProps {
  /**
   * What the role is for; shown in the IAM console.
   * @default 'SageMaker execution role managed by cdk-ml-patterns'
   */
  readonly description?: string;
  /**
   * Let SageMaker create network interfaces so that jobs and models can run in your VPC.
   * @default false
   */
  readonly allowVpcAccess?: boolean;
}

/** A parsed ECR image URI. */
export interface EcrImageReference {
  readonly account: string;
  readonly region: string;
  readonly repository: string;
}

const ECR_IMAGE = /^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?\/([a-z0-9][a-z0-9._/-]*?)(?::[\w][\w.-]*|@sha256:[a-f0-9]{64})$/;

/** Splits `<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>` into its parts, or returns undefined. */
export function parseEcrImageUri(uri: string): EcrImageReference | undefined {
  const match = ECR_IMAGE.exec(uri);
  return match ? { account: match[1], region: match[2], repository: match[3] } : undefined;
}

/**
 * A least-privilege role for SageMaker models, processing, training and transform jobs, in place of
 * `AmazonSageMakerFullAccess`. It starts with what every SageMaker workload needs (its own logs and
 * metrics); each construct that uses it adds exactly the images, artifacts and keys it needs.
 */
export class SageMakerExecutionRole extends Construct implements iam.IGrantable {
  public readonly role: ManagedPolicyRole;
  public readonly grantPrincipal: iam.IPrincipal;
  private readonly pulledRepositories = new Set<string>();

  constructor(scope: Construct, id: string, props: SageMakerExecutionRoleProps = {}) {
    super(scope, id);
    const stack = Stack.of(this);
    this.role = new ManagedPolicyRole(this, 'Resource', {
      assumedBy: new iam.ServicePrincipal('sagemaker.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
      description: props.description ?? 'SageMaker execution role managed by cdk-ml-patterns',
    });
    this.grantPrincipal = this.role;

    const logGroups = `arn:${stack.partition}:logs:${stack.region}:${stack.account}:log-group:/aws/sagemaker/*`;
    const logStreams = `${logGroups}:log-stream:*`;
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'SageMakerLogs',
        actions: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams'],
        resources: [logGroups, logStreams],
      }),
    );
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'SageMakerMetrics',
        actions: ['cloudwatch:PutMetricData'],
        resources: ['*'],
        conditions: { StringLike: { 'cloudwatch:namespace': ['/aws/sagemaker/*', 'aws/sagemaker/*'] } },
      }),
    );
    const policy = this.role.grantsPolicy;
    acknowledgeWildcardResource(
      policy,
      logGroups,
      'SageMaker names its log groups after the jobs and endpoints whose names CloudFormation generates; the grant stops at the /aws/sagemaker/ prefix of this account and region.',
    );
    acknowledgeWildcardResource(policy, logStreams, 'SageMaker creates one log stream per instance at run time, inside the /aws/sagemaker/ log groups of this account and region.');
    acknowledgeWildcardResource(
      policy,
      '*',
      'cloudwatch:PutMetricData, ecr:GetAuthorizationToken and the EC2 network-interface calls SageMaker makes for VPC access have no resource-level permissions; PutMetricData is limited to SageMaker namespaces by a condition.',
    );

    if (props.allowVpcAccess) {
      this.role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'SageMakerVpcAccess',
          actions: [
            'ec2:CreateNetworkInterface',
            'ec2:CreateNetworkInterfacePermission',
            'ec2:DeleteNetworkInterface',
            'ec2:DeleteNetworkInterfacePermission',
            'ec2:DescribeNetworkInterfaces',
            'ec2:DescribeVpcs',
            'ec2:DescribeDhcpOptions',
            'ec2:DescribeSubnets',
            'ec2:DescribeSecurityGroups',
          ],
          resources: ['*'],
        }),
      );
    }
  }

  /** Lets SageMaker pull the given ECR image; the grant is scoped to that one repository. */
  public grantPullImage(imageUri: string): void {
    const image = parseEcrImageUri(imageUri);
    if (!image) {
      throw new Error(`${this.node.path}: grantPullImage: '${imageUri}' is not an ECR image URI (<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>)`);
    }
    const stack = Stack.of(this);
    const repositoryArn = `arn:${stack.partition}:ecr:${image.region}:${image.account}:repository/${image.repository}`;
    if (this.pulledRepositories.size === 0) {
      this.role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'EcrAuthorization', actions: ['ecr:GetAuthorizationToken'], resources: ['*'] }));
    }
    if (!this.pulledRepositories.has(repositoryArn)) {
      this.pulledRepositories.add(repositoryArn);
      this.role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['ecr:BatchCheckLayerAvailability', 'ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'],
          resources: [repositoryArn],
        }),
      );
    }
  }
}
