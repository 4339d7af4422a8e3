// Near-real-time drift detection in an application team's own stack. The README shows this
// function; the tests type-check and synthesize it. In your project, import from 'cdk-ml-patterns'.
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { DriftDetector, ModelEndpoint } from '../lib';

export function driftDetection(endpoint: ModelEndpoint, artifacts: s3.IBucket, key: kms.IKey, pager: cloudwatch.IAlarmAction): DriftDetector {
  // The endpoint must capture its requests (dataCapture); the baseline comes from `npm run drift-baseline`.
  return new DriftDetector(endpoint, 'Drift', {
    endpoint,
    baseline: { bucket: artifacts, key: `baselines/${endpoint.modelName}/drift-baseline.json` },
    interval: Duration.minutes(10),
    psiThreshold: 0.2,
    encryptionKey: key,
    alarmAction: pager,
  });
}
