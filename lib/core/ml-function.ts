import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ManagedPolicyRole } from './managed-policy-role';
import { lambdaBundle } from './private/lambda-asset';
import { acknowledgeWildcardResource } from './private/nag';
import { assertRequiredProps } from './private/props';

export interface MlFunctionProps {
  /** Name of the pre-built handler bundle under `assets/lambda/`. */
  readonly handler: string;
  readonly description: string;
  /** Key that encrypts the function's log group. */
  readonly encryptionKey: kms.IKey;
  /**
   * Who invokes the function synchronously and handles its errors; quoted in the compliance notes.
   * @default - the function is invoked asynchronously; give it a `deadLetterQueue`
   */
  readonly invokedSynchronouslyBy?: string;
  /**
   * The function is a CloudFormation custom resource provider: CloudFormation invokes it asynchronously
   * and waits for its answer at the event's pre-signed URL, and the handler answers every event, its own
   * failures included. It gets no retries (a retry would run the same change twice) and no dead-letter
   * queue, which would only ever hold events CloudFormation has already been told about.
   * @default false
   */
  readonly invokedByCloudFormation?: boolean;
  /**
   * Queue for asynchronous invocations that failed every retry.
   * @default - none; required when the function is not invoked synchronously
   */
  readonly deadLetterQueue?: sqs.IQueue;
  /** What the function talks to; quoted in the compliance note when it runs outside a VPC. */
  readonly calls: string;
  readonly timeout: Duration;
  /**
   * @default 512
   */
  readonly memorySize?: number;
  /**
   * Reserved concurrency: bounds what the function can spend and what it can do to its dependencies.
   */
  readonly reservedConcurrency: number;
  /**
   * @default - none
   */
  readonly environment?: Record<string, string>;
  /**
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * @default RemovalPolicy.RETAIN
   */
  readonly logRemovalPolicy?: RemovalPolicy;
  /**
   * Run the function in this VPC.
   * @default - outside any VPC
   */
  readonly vpc?: ec2.IVpc;
  /**
   * @default - the VPC's isolated subnets
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
}

/**
 * A Lambda function of the platform: one of the pre-built handler bundles on Node.js 24 (arm64),
 * with its own KMS-encrypted log group (JSON logs), a managed-policy role, X-Ray tracing, reserved
 * concurrency and, where the environment has one, a place in the VPC. The compliance findings that
 * do not apply to a synchronously invoked function are acknowledged here, once, with the reason.
 */
export class MlFunction extends Construct {
  public readonly function: lambda.Function;
  public readonly role: ManagedPolicyRole;

  constructor(scope: Construct, id: string, props: MlFunctionProps) {
    super(scope, id);
    assertRequiredProps(this.node.path, 'MlFunction', props, { handler: 'string', description: 'string', encryptionKey: 'object', calls: 'string', timeout: 'object', reservedConcurrency: 'number' });
    const logGroup = new logs.LogGroup(this, 'Logs', {
      encryptionKey: props.encryptionKey,
      retention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.RETAIN,
    });
    this.role = new ManagedPolicyRole(this, 'Role', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'), description: props.description });
    logGroup.grantWrite(this.role);
    this.function = new lambda.Function(this, 'Resource', {
      description: props.description,
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      handler: 'index.handler',
      code: lambdaBundle(props.handler),
      role: this.role,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout,
      reservedConcurrentExecutions: props.reservedConcurrency,
      tracing: lambda.Tracing.ACTIVE,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      vpc: props.vpc,
      vpcSubnets: props.vpc ? props.vpcSubnets ?? { subnetType: ec2.SubnetType.PRIVATE_ISOLATED } : undefined,
      environment: props.environment,
      deadLetterQueue: props.deadLetterQueue,
      retryAttempts: props.invokedByCloudFormation ? 0 : undefined,
    });

    acknowledgeWildcardResource(this.role.grantsPolicy, '*', 'X-Ray tracing (xray:PutTraceSegments, xray:PutTelemetryRecords) has no resource-level permissions.');
    if (props.vpc) {
      Validations.of(this.role).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
        reason: "Lambda attaches the AWS-managed VPC access policy to manage the function's network interfaces; its EC2 actions have no resource-level permissions to scope a custom policy with.",
      });
    }
    const acknowledge = Validations.of(this.function);
    if (props.invokedSynchronouslyBy !== undefined) {
      const dlqReason = `The function is invoked synchronously by ${props.invokedSynchronouslyBy}, which handles its errors; a dead-letter queue only applies to asynchronous invocations.`;
      acknowledge.acknowledge({ id: 'HIPAA.Security-LambdaDLQ', reason: dlqReason }, { id: 'NIST.800.53.R5-LambdaDLQ', reason: dlqReason });
    } else if (props.invokedByCloudFormation) {
      const dlqReason = 'A custom resource provider: CloudFormation invokes it and waits for its answer at the pre-signed response URL; the handler answers every event, failures included, so a dead-letter queue would only hold events CloudFormation already knows the outcome of.';
      acknowledge.acknowledge({ id: 'HIPAA.Security-LambdaDLQ', reason: dlqReason }, { id: 'NIST.800.53.R5-LambdaDLQ', reason: dlqReason });
    } else if (props.deadLetterQueue === undefined) {
      throw new Error(`${this.node.path} (MlFunction): deadLetterQueue: an asynchronously invoked function needs one (or name who invokes it synchronously in invokedSynchronouslyBy)`);
    }
    if (!props.vpc) {
      const reason = `This environment has no VPC (config network.vpc); the function only calls ${props.calls} over TLS with SigV4.`;
      acknowledge.acknowledge({ id: 'HIPAA.Security-LambdaInsideVPC', reason }, { id: 'NIST.800.53.R5-LambdaInsideVPC', reason });
    }
  }
}
