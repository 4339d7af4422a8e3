// Bundled by `npm run bench` (esbuild, with the options of scripts/build-lambdas.mjs) as the
// reference for the handlers' cold start: the SageMaker Runtime client alone, constructed.
'use strict';
const { SageMakerRuntimeClient } = require('@aws-sdk/client-sagemaker-runtime');

module.exports.client = new SageMakerRuntimeClient({});
