import { BatchWriteItemCommand, CreateTableCommand, type AttributeValue, type CreateTableCommandInput, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import { PredictionLog } from '../../lib/experiments/prediction-log';
import { predictionLogItem, predictionLogRecord } from '../../lambda/shared/experiments';

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

/** A logged prediction, with the outcome recorded against it, if any. */
export interface LoggedPrediction {
  readonly model: string;
  readonly variant: string;
  /** When it was served, in epoch milliseconds. */
  readonly servedAt: number;
  readonly outcome?: { readonly type: 'binary' | 'continuous'; readonly value: number };
}

let sequence = 0;

/** The item the inference function writes for a prediction (predictionLogItem), as the outcome API's UpdateItem (outcomeUpdate) leaves it. */
export function predictionItem(prediction: LoggedPrediction): Record<string, AttributeValue> {
  sequence += 1;
  const record = predictionLogRecord({
    result: { predictionId: `p-${sequence}`, model: prediction.model, variant: prediction.variant, modelVersion: `${prediction.variant}-1` },
    servedAt: new Date(prediction.servedAt),
    ttlDays: 90,
  });
  const item: Record<string, AttributeValue> = { ...predictionLogItem(record) };
  if (prediction.outcome !== undefined) {
    item.outcomeType = { S: prediction.outcome.type };
    item.outcomeValue = { N: String(prediction.outcome.value) };
    item.outcomeAt = { S: new Date(prediction.servedAt + 60_000).toISOString() };
  }
  return item;
}

/** Predictions of a variant spread evenly over (from, to]: `ones` with outcome 1, then `zeros` with 0, then `none` without an outcome. */
export function binaryPredictions(model: string, variant: string, from: number, to: number, counts: { ones?: number; zeros?: number; none?: number }): LoggedPrediction[] {
  const { ones = 0, zeros = 0, none = 0 } = counts;
  const total = ones + zeros + none;
  return Array.from({ length: total }, (_, index) => ({
    model,
    variant,
    servedAt: to - Math.floor((index * (to - from)) / total),
    ...(index < ones ? { outcome: { type: 'binary' as const, value: 1 } } : index < ones + zeros ? { outcome: { type: 'binary' as const, value: 0 } } : {}),
  }));
}

/** Predictions of a variant spread evenly over (from, to], with these continuous outcomes. */
export function continuousPredictions(model: string, variant: string, from: number, to: number, values: readonly number[]): LoggedPrediction[] {
  return values.map((value, index) => ({ model, variant, servedAt: to - Math.floor((index * (to - from)) / values.length), outcome: { type: 'continuous' as const, value } }));
}

/** Writes the predictions' items into the table, 25 at a time. */
export async function seedPredictions(client: DynamoDBClient, tableName: string, predictions: readonly LoggedPrediction[]): Promise<void> {
  const items = predictions.map(predictionItem);
  for (let start = 0; start < items.length; start += 25) {
    const result = await client.send(new BatchWriteItemCommand({ RequestItems: { [tableName]: items.slice(start, start + 25).map((Item) => ({ PutRequest: { Item } })) } }));
    if (Object.keys(result.UnprocessedItems ?? {}).length > 0) throw new Error('the table left items unprocessed');
  }
}
