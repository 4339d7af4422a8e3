// Runs before every test file. aws-cdk-lib validates each synthesized template against the
// CloudFormation schemas (its built-in validation plugin), which is most of an in-process synth's
// time; the tests synthesize the platform dozens of times. They leave it off, except where it is
// the subject: the cdk CLI synths (test/support/cli.ts puts it back) and test/lint/cdk-nag.test.ts,
// which synthesizes every environment with it on. cfn-lint checks the same schemas and more.
process.env.CDK_VALIDATION ??= 'false';
