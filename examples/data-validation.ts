// The data-validation service in an application team's own workflow: landed order files checked against
// their constraints before anything reads them. The README shows the function; the tests type-check and
// synthesize it. In your project, import from 'cdk-ml-patterns'.
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { DatasetFormat, DataValidation, MlWorkflow } from '../lib';

export function validatedOrders(scope: Construct, landing: s3.IBucket, reports: s3.IBucket, key: kms.IKey): MlWorkflow {
  const validation = new DataValidation(scope, 'OrdersValidation', {
    dataBucket: landing,
    datasetsPrefix: 'orders/landing/',
    constraintsPrefix: 'orders/constraints/', // npm run suggest-constraints -- --input orders-sample.jsonl --format jsonl
    reportsBucket: reports,
    reportsPrefix: 'orders/validation/',
    encryptionKey: key,
    name: 'orders',
  });
  // Input: { "datasetUri": "s3://…/orders/landing/2026-12-04/", "constraintsUri": "s3://…/orders/constraints/v3.json",
  //          "reportUri": "s3://…/orders/validation/2026-12-04/" }
  const definition = validation.steps(scope, {
    datasetUri: '$.datasetUri',
    constraintsUri: '$.constraintsUri',
    reportUri: '$.reportUri',
    format: DatasetFormat.JSON_LINES,
    resultPath: '$.validation',
    passed: new sfn.Succeed(scope, 'Orders valid'),
    failed: new sfn.Fail(scope, 'Orders invalid', { error: 'DataValidationFailed', causePath: '$.validation.reportUri' }),
    errored: new sfn.Fail(scope, 'Validation error', { errorPath: '$.error.Error', causePath: '$.error.Cause' }),
  });
  const workflow = new MlWorkflow(scope, 'ValidateOrders', { definition, description: 'Validates landed orders against their constraints', encryptionKey: key });
  validation.acknowledgeInvokeGrant(workflow);
  return workflow;
}
