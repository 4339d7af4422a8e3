// The smallest useful CDK app: one S3 bucket. `npm run bench` synthesizes it beside the blueprint
// with the same CDK CLI, so the ratio of the two synth times is the blueprint's own cost.
'use strict';
const { App, Stack } = require('aws-cdk-lib');
const s3 = require('aws-cdk-lib/aws-s3');

const app = new App();
const stack = new Stack(app, 'BenchBaseline');
new s3.Bucket(stack, 'Bucket');
app.synth();
