import { CustomResource, Lazy, RemovalPolicy, Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as opensearch from 'aws-cdk-lib/aws-opensearchservice';
import { Construct } from 'constructs';
import { assertRequiredProps } from '../core/private/props';

/** k-NN libraries of OpenSearch. */
export enum KnnEngine {
  FAISS = 'faiss',
  LUCENE = 'lucene',
  NMSLIB = 'nmslib',
}

/** Distance functions of the vector field. */
export enum KnnSpaceType {
  L2 = 'l2',
  COSINE = 'cosinesimil',
  INNER_PRODUCT = 'innerproduct',
}

/** Space types each engine supports (lambda/shared/knn-index.ts checks the same at deploy). */
export const KNN_ENGINE_SPACE_TYPES: Record<KnnEngine, readonly KnnSpaceType[]> = {
  [KnnEngine.FAISS]: [KnnSpaceType.L2, KnnSpaceType.INNER_PRODUCT],
  [KnnEngine.LUCENE]: [KnnSpaceType.L2, KnnSpaceType.COSINE, KnnSpaceType.INNER_PRODUCT],
  [KnnEngine.NMSLIB]: [KnnSpaceType.L2, KnnSpaceType.COSINE, KnnSpaceType.INNER_PRODUCT],
};

export interface KnnIndexOptions {
  /** Index name: lowercase letters, digits, `-` and `_`. A new name creates a new index and deletes the old one. */
  readonly indexName: string;
  /** Vector size; must match the embedding model. Cannot change in place (the update fails with the reason). */
  readonly dimension: number;
  /**
   * @default KnnEngine.FAISS
   */
  readonly engine?: KnnEngine;
  /**
   * @default KnnSpaceType.L2
   */
  readonly spaceType?: KnnSpaceType;
  /**
   * Primary shards.
   * @default 1
   */
  readonly shards?: number;
  /**
   * Replicas of each shard; at most the number of data nodes minus one.
   * @default 0
   */
  readonly replicas?: number;
}

export interface KnnIndexProps extends KnnIndexOptions {
  /** The domain that holds the index; fine-grained access control must map `provider`'s role as master user. */
  readonly domain: opensearch.IDomain;
  /** The function that serves the custom resource: the pre-built `knn-index` bundle. */
  readonly provider: lambda.IFunction;
  /**
   * What happens to the index (and its chunks) when the resource leaves the stack.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The k-NN index of a knowledge base, as a CloudFormation custom resource (`Custom::KnnIndex`) served
 * directly by a TypeScript function: created, updated and deleted idempotently, with OpenSearch security
 * roles that map the IAM roles given to `addWriter` and `addReader` (fine-grained access control).
 */
export class KnnIndex extends Construct {
  public readonly indexName: string;
  public readonly dimension: number;
  public readonly engine: KnnEngine;
  public readonly spaceType: KnnSpaceType;
  public readonly resource: CustomResource;
  private readonly writers: iam.IRole[] = [];
  private readonly readers: iam.IRole[] = [];

  constructor(scope: Construct, id: string, props: KnnIndexProps) {
    super(scope, id);
    assertRequiredProps(this.node.path, 'KnnIndex', props, { domain: 'object', provider: 'object', indexName: 'string', dimension: 'number' });
    this.engine = props.engine ?? KnnEngine.FAISS;
    this.spaceType = props.spaceType ?? KnnSpaceType.L2;
    validateKnnIndexOptions(this.node.path, props);
    this.indexName = props.indexName;
    this.dimension = props.dimension;

    this.resource = new CustomResource(this, 'Resource', {
      serviceToken: props.provider.functionArn,
      resourceType: 'Custom::KnnIndex',
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      properties: {
        DomainEndpoint: `https://${props.domain.domainEndpoint}`,
        IndexName: props.indexName,
        Dimension: props.dimension,
        Engine: this.engine,
        SpaceType: this.spaceType,
        Shards: props.shards ?? 1,
        Replicas: props.replicas ?? 0,
        WriterRoleArns: Lazy.list({ produce: () => this.writers.map((role) => role.roleArn) }),
        ReaderRoleArns: Lazy.list({ produce: () => this.readers.map((role) => role.roleArn) }),
      },
    });
  }

  /** Maps the role to the index's writer role (index and delete chunks); the IAM side is the caller's. */
  public addWriter(role: iam.IRole): void {
    this.writers.push(role);
  }

  /** Maps the role to the index's reader role (search). */
  public addReader(role: iam.IRole): void {
    this.readers.push(role);
  }
}

/** Checks index options at synth; throws naming the prop and the construct path. */
export function validateKnnIndexOptions(path: string, options: KnnIndexOptions): void {
  const fail = (message: string): never => {
    throw new Error(`${path} (KnnIndex): ${message}`);
  };
  if (!Token.isUnresolved(options.indexName) && !/^[a-z0-9][a-z0-9_-]{0,254}$/.test(options.indexName)) {
    fail(`indexName: must be lowercase letters, digits, '-' or '_', starting with a letter or digit; got '${options.indexName}'`);
  }
  if (!Number.isInteger(options.dimension) || options.dimension < 1 || options.dimension > 16000) fail(`dimension: must be a whole number from 1 to 16000; got ${options.dimension}`);
  const engine = options.engine ?? KnnEngine.FAISS;
  const spaceType = options.spaceType ?? KnnSpaceType.L2;
  if (!KNN_ENGINE_SPACE_TYPES[engine]?.includes(spaceType)) fail(`spaceType: the ${engine} engine supports ${KNN_ENGINE_SPACE_TYPES[engine]?.join(', ')}; got '${spaceType}'`);
  if (options.shards !== undefined && !(Number.isInteger(options.shards) && options.shards >= 1)) fail(`shards: must be a whole number >= 1; got ${options.shards}`);
  if (options.replicas !== undefined && !(Number.isInteger(options.replicas) && options.replicas >= 0)) fail(`replicas: must be a whole number >= 0; got ${options.replicas}`);
}
