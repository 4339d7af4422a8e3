import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { buildExample } from '../../examples/consumer-stack';

const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');

test('the consumer example in the README synthesizes a champion/challenger endpoint behind the inference API', () => {
  const template = Template.fromStack(buildExample(new App()));
  template.resourceCountIs('AWS::SageMaker::Endpoint', 1);
  template.resourceCountIs('AWS::ApiGateway::RestApi', 1);
});

test('the README shows the consumer example exactly as the tests compile it', () => {
  const source = readFileSync(join(__dirname, '..', '..', 'examples', 'consumer-stack.ts'), 'utf8');
  const body = source.slice(source.indexOf('export function buildExample'), source.indexOf('if (require.main'));
  expect(readme).toContain(body.trim());
});

test('the README keeps the two set-up commands', () => {
  expect(readme).toContain('npm ci && npx cdk synth -c env=dev');
  expect(readme).toContain('npm test');
});

test('the README installs from what exists: a tarball of this repository, not a registry; it links nothing outside the repository', () => {
  // Not on a registry yet: `npm install cdk-ml-patterns` would fail for a reader.
  expect(readme).not.toMatch(/npm (install|i) cdk-ml-patterns\b/);
  expect(readme).toContain('npm ci && npm pack');
  expect(readme).toMatch(/npm install \.\.\/cdk-ml-patterns\/cdk-ml-patterns-\*\.tgz/);
  // Paths above the repository (a sibling checkout's files) mean nothing to a reader of the package.
  const outside = [...readme.matchAll(/(?:\]\(|`)(\.\.\/[^)`\s]*)/g)].map((match) => match[1]).filter((path) => !path.startsWith('../your-cdk-app') && !path.startsWith('../cdk-ml-patterns/'));
  expect(outside).toEqual([]);
  // `--all` is no longer a synth option of the CDK CLI.
  expect(readme).not.toMatch(/cdk synth[^\n`]*--all/);
});
