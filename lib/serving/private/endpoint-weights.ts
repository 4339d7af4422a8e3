import { CustomResource, Duration, type RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { MlFunction } from '../../core/ml-function';

/** The custom resource type CloudFormation shows for the declared weights of an endpoint. */
export const ENDPOINT_WEIGHTS_RESOURCE_TYPE = 'Custom::EndpointWeights';

const PROVIDER_ID = 'EndpointWeightsProvider';

/**
 * The stack's one function behind every `Custom::EndpointWeights` (lambda/endpoint-weights): one per stack,
 * not per endpoint, so that a fleet of endpoints adds one custom resource each and nothing more.
 */
class EndpointWeightsProvider extends Construct {
  public static of(scope: Construct, encryptionKey: kms.IKey, logRemovalPolicy: RemovalPolicy | undefined): EndpointWeightsProvider {
    const stack = Stack.of(scope);
    return (stack.node.tryFindChild(PROVIDER_ID) as EndpointWeightsProvider | undefined) ?? new EndpointWeightsProvider(stack, PROVIDER_ID, encryptionKey, logRemovalPolicy);
  }

  public readonly handler: MlFunction;
  private readonly statement: iam.PolicyStatement;

  private constructor(scope: Construct, id: string, encryptionKey: kms.IKey, logRemovalPolicy: RemovalPolicy | undefined) {
    super(scope, id);
    this.handler = new MlFunction(this, 'Function', {
      handler: 'endpoint-weights',
      description: 'Applies the traffic weights a ModelEndpoint declares when they change, and keeps the run-time weights otherwise',
      encryptionKey,
      logRemovalPolicy,
      invokedByCloudFormation: true,
      calls: 'SageMaker (DescribeEndpoint, UpdateEndpointWeightsAndCapacities) and the CloudFormation response URL',
      // Waits for the endpoint before and after the weight update; answers 20 s before this.
      timeout: Duration.minutes(15),
      memorySize: 256,
      // CloudFormation updates the endpoints of a stack in parallel; more wait in Lambda's queue.
      reservedConcurrency: 2,
    });
    this.statement = new iam.PolicyStatement({ actions: ['sagemaker:DescribeEndpoint', 'sagemaker:UpdateEndpointWeightsAndCapacities'], resources: [] });
    this.handler.role.addToPrincipalPolicy(this.statement);
  }

  /** Lets the function describe and set the weights of this endpoint only. */
  public allow(endpointArn: string): void {
    this.statement.addResources(endpointArn);
  }
}

export interface EndpointWeightsProps {
  readonly endpointName: string;
  readonly endpointArn: string;
  /** The production variants' weights as the props declare them. */
  readonly weights: ReadonlyArray<{ readonly variantName: string; readonly weight: number }>;
  /** Encrypts the provider's log group when this is the stack's first endpoint. */
  readonly encryptionKey: kms.IKey;
  /** Removal policy of the provider's log group when this is the stack's first endpoint. */
  readonly logRemovalPolicy?: RemovalPolicy;
}

/**
 * The weights a `ModelEndpoint`'s props declare, as a custom resource. CloudFormation updates a custom
 * resource only when its properties change, so the handler applies the weights exactly when the props'
 * weights changed; the endpoint itself keeps its run-time weights through every other update
 * (RetainAllVariantProperties).
 */
export class EndpointWeights extends Construct {
  public readonly resource: CustomResource;

  constructor(scope: Construct, id: string, props: EndpointWeightsProps) {
    super(scope, id);
    const provider = EndpointWeightsProvider.of(this, props.encryptionKey, props.logRemovalPolicy);
    provider.allow(props.endpointArn);
    this.resource = new CustomResource(this, 'Resource', {
      serviceToken: provider.handler.function.functionArn,
      resourceType: ENDPOINT_WEIGHTS_RESOURCE_TYPE,
      properties: {
        EndpointName: props.endpointName,
        Weights: props.weights.map((weight) => ({ VariantName: weight.variantName, DesiredWeight: weight.weight })),
      },
    });
  }
}
