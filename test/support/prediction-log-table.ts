import { CreateTableCommand, type CreateTableCommandInput, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import { PredictionLog } from '../../lib/experiments/prediction-log';

/**
 * The prediction-log table's keys and index, read from the template the `PredictionLog` construct
 * synthesizes, so that the tables the handler tests create in moto cannot drift from what is deployed.
 */
function tableSchema(): Pick<CreateTableCommandInput, 'AttributeDefinitions' | 'KeySchema' | 'GlobalSecondaryIndexes'> {
  const stack = new Stack(new App(), 'Schema');
  new PredictionLog(stack, 'Log', { encryptionKey: new kms.Key(stack, 'Key') });
  const [table] = Object.values(Template.fromStack(stack).findResources('AWS::DynamoDB::Table'));
  const { AttributeDefinitions, KeySchema, GlobalSecondaryIndexes } = table.Properties;
  return { AttributeDefinitions, KeySchema, GlobalSecondaryIndexes };
}

let schema: ReturnType<typeof tableSchema> | undefined;

/** Creates the prediction-log table, as the construct defines it, in the DynamoDB the client points at. */
export async function createPredictionLogTable(client: DynamoDBClient, tableName: string): Promise<void> {
  schema ??= tableSchema();
  await client.send(new CreateTableCommand({ TableName: tableName, BillingMode: 'PAY_PER_REQUEST', ...schema }));
}
