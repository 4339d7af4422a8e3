import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import {
  expectValidStateMachines,
  placeholderArn,
  placeholderRef,
  renderStateMachineDefinitions,
  validateAsl,
} from './asl';

type Json = Record<string, any>;

/** A small deployment-watcher workflow touching every state type and both Lambda and AWS SDK tasks. */
function buildStack(): { stack: Stack; fnLogicalId: string; smLogicalId: string } {
  const stack = new Stack(new App(), 'AslHelperTestStack');

  const fn = new lambda.Function(stack, 'ScoreFn', {
    runtime: lambda.Runtime.NODEJS_24_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline('exports.handler = async (e) => ({ ...e, score: 1 });'),
  });

  const failed = new sfn.Fail(stack, 'DeploymentFailed', { error: 'DeploymentFailed', cause: 'Endpoint failed' });
  const prepare = new sfn.Pass(stack, 'Prepare', { result: sfn.Result.fromObject({ attempt: 0 }), resultPath: '$.meta' });
  const score = new tasks.LambdaInvoke(stack, 'Score', {
    lambdaFunction: fn,
    resultSelector: { 'score.$': '$.Payload.score' },
    resultPath: '$.scored',
  })
    .addRetry({ errors: ['States.Timeout'], interval: Duration.seconds(2), maxAttempts: 3, backoffRate: 2 })
    .addCatch(failed, { errors: ['States.ALL'], resultPath: '$.error' });
  const describe = new tasks.CallAwsService(stack, 'DescribeEndpoint', {
    service: 'sagemaker',
    action: 'describeEndpoint',
    parameters: { EndpointName: sfn.JsonPath.stringAt('$.endpointName') },
    iamResources: ['*'],
    resultPath: '$.endpoint',
  });
  const wait = new sfn.Wait(stack, 'WaitForEndpoint', { time: sfn.WaitTime.duration(Duration.seconds(30)) });
  const fanOut = new sfn.Map(stack, 'NotifyTargets', { itemsPath: '$.targets', maxConcurrency: 2, resultPath: sfn.JsonPath.DISCARD });
  fanOut.itemProcessor(new sfn.Pass(stack, 'NotifyTarget'));
  const done = new sfn.Succeed(stack, 'Done');

  const isReady = new sfn.Choice(stack, 'IsReady')
    .when(sfn.Condition.stringEquals('$.endpoint.EndpointStatus', 'InService'), fanOut.next(done))
    .when(
      sfn.Condition.or(
        sfn.Condition.stringEquals('$.endpoint.EndpointStatus', 'Failed'),
        sfn.Condition.numberGreaterThan('$.meta.attempt', 10),
      ),
      failed,
    )
    .otherwise(wait.next(describe));

  const sm = new sfn.StateMachine(stack, 'Watcher', {
    definitionBody: sfn.DefinitionBody.fromChainable(prepare.next(score).next(describe).next(isReady)),
  });

  return {
    stack,
    fnLogicalId: stack.getLogicalId(fn.node.defaultChild as lambda.CfnFunction),
    smLogicalId: stack.getLogicalId(sm.node.defaultChild as sfn.CfnStateMachine),
  };
}

/** A template holding a single state machine whose DefinitionString is `definition` serialized verbatim. */
function templateWith(definitionString: unknown, extra: Json = {}): Json {
  return {
    Resources: {
      Machine: { Type: 'AWS::StepFunctions::StateMachine', Properties: { DefinitionString: definitionString, ...extra } },
    },
  };
}

describe('ASL test helper', () => {
  let built: ReturnType<typeof buildStack>;
  let template: Json;

  beforeAll(() => {
    built = buildStack();
    template = Template.fromStack(built.stack).toJSON();
  });

  describe('on a synthesized CDK stack', () => {
    test('the state machine definition is an Fn::Join with intrinsics that renders into a valid ASL object', () => {
      const raw = template.Resources[built.smLogicalId].Properties.DefinitionString;
      expect(raw).toHaveProperty(['Fn::Join']);
      expect(JSON.stringify(raw)).toContain('"Fn::GetAtt"');

      const rendered = renderStateMachineDefinitions(template);

      expect(rendered).toHaveLength(1);
      expect(rendered[0].logicalId).toBe(built.smLogicalId);
      expect(validateAsl(rendered[0].definition)).toEqual({ valid: true, errors: [] });
    });

    test('the rendered definition has the expected StartAt and States', () => {
      const [{ definition }] = renderStateMachineDefinitions(template) as Array<{ definition: Json }>;

      expect(definition.StartAt).toBe('Prepare');
      expect(Object.keys(definition.States).sort()).toEqual(
        ['DeploymentFailed', 'DescribeEndpoint', 'Done', 'IsReady', 'NotifyTargets', 'Prepare', 'Score', 'WaitForEndpoint'].sort(),
      );
      expect(definition.States.NotifyTargets.ItemProcessor.StartAt).toBe('NotifyTarget');
      expect(definition.States.IsReady.Type).toBe('Choice');
      expect(definition.States.Score.Catch[0].Next).toBe('DeploymentFailed');
      expect(definition.States.Score.Retry).toEqual(
        expect.arrayContaining([expect.objectContaining({ ErrorEquals: ['States.Timeout'], MaxAttempts: 3 })]),
      );
    });

    test('intrinsics are replaced by placeholders that stay valid inside JSON string literals', () => {
      const [{ definition }] = renderStateMachineDefinitions(template) as Array<{ definition: Json }>;

      expect(definition.States.Score.Resource).toBe('arn:aws:states:::lambda:invoke');
      expect(definition.States.Score.Parameters.FunctionName).toBe(placeholderArn(built.fnLogicalId));
      expect(placeholderArn(built.fnLogicalId)).toBe(`arn:aws:states:us-east-1:123456789012:placeholder:${built.fnLogicalId}`);
      expect(definition.States.DescribeEndpoint.Resource).toBe('arn:aws:states:::aws-sdk:sagemaker:describeEndpoint');
    });

    test('expectValidStateMachines passes and returns the rendered definitions', () => {
      const rendered = expectValidStateMachines(template);

      expect(rendered.map((r) => r.logicalId)).toEqual([built.smLogicalId]);
    });
  });

  describe('catching broken definitions', () => {
    function renderedDefinition(): Json {
      return structuredClone(renderStateMachineDefinitions(template)[0].definition) as Json;
    }

    test('a Next pointing to a missing state is reported invalid with the missing target named', () => {
      const broken = renderedDefinition();
      broken.States.Prepare.Next = 'NoSuchState';

      const result = validateAsl(broken);

      expect(result.valid).toBe(false);
      expect(result.errors).toEqual(expect.arrayContaining([expect.stringContaining('NoSuchState')]));
      expect(result.errors.join('\n')).toMatch(/MISSING_TRANSITION_TARGET/);
    });

    test('a definition without StartAt is reported invalid with StartAt named', () => {
      const broken = renderedDefinition();
      delete broken.StartAt;

      const result = validateAsl(broken);

      expect(result.valid).toBe(false);
      expect(result.errors.join('\n')).toMatch(/StartAt/);
    });

    test('validating does not mutate the definition passed in', () => {
      const definition = renderedDefinition();
      const before = JSON.stringify(definition);

      validateAsl(definition);

      expect(JSON.stringify(definition)).toBe(before);
    });

    test('expectValidStateMachines fails naming the logical id and every validation error', () => {
      const broken = renderedDefinition();
      broken.States.Prepare.Next = 'NoSuchState';
      const mutated = structuredClone(template);
      mutated.Resources[built.smLogicalId].Properties.DefinitionString = JSON.stringify(broken);
      const expected = validateAsl(broken).errors;
      expect(expected.length).toBeGreaterThan(0);

      let message = '';
      try {
        expectValidStateMachines(mutated);
      } catch (e) {
        message = (e as Error).message;
      }

      expect(message).toContain(built.smLogicalId);
      for (const error of expected) expect(message).toContain(error);
    });

    test('expectValidStateMachines fails when the template has no state machine', () => {
      expect(() => expectValidStateMachines({ Resources: {} })).toThrow(/at least one AWS::StepFunctions::StateMachine/);
    });
  });

  describe('rendering intrinsics', () => {
    test('an unsupported intrinsic throws naming the logical id and the intrinsic', () => {
      const mutated = structuredClone(template);
      const parts: unknown[] = mutated.Resources[built.smLogicalId].Properties.DefinitionString['Fn::Join'][1];
      parts.splice(1, 0, { 'Fn::If': ['IsProd', 'a', 'b'] });

      expect(() => renderStateMachineDefinitions(mutated)).toThrow(
        new RegExp(`State machine ${built.smLogicalId}: unsupported intrinsic Fn::If`),
      );
    });

    test('Ref AWS::NoValue inside a definition is rejected as unsupported', () => {
      expect(() => renderStateMachineDefinitions(templateWith({ 'Fn::Join': ['', ['{', { Ref: 'AWS::NoValue' }, '}']] }))).toThrow(
        /State machine Machine: unsupported intrinsic Ref AWS::NoValue/,
      );
    });

    test('Sub, Select, Split, ImportValue, FindInMap, pseudo parameters and ARN-returning Refs all render', () => {
      const definition = {
        'Fn::Join': [
          '',
          [
            '{"StartAt":"Publish","States":{"Publish":{"Type":"Task","Resource":"arn:aws:states:::sns:publish","Parameters":{"TopicArn":"',
            { Ref: 'Topic' },
            '","Message":"',
            { 'Fn::Sub': ['${AWS::Region}/${Name}/${Bucket.Arn}/${Bucket}/${!Literal}', { Name: { 'Fn::ImportValue': 'shared-name' } }] },
            '","Subject":"',
            { 'Fn::Select': [1, { 'Fn::Split': ['/', 'a/b/c'] }] },
            '","MessageGroupId":"',
            { 'Fn::Select': [5, { 'Fn::Split': [':', { Ref: 'Bucket' }] }] },
            '","MessageDeduplicationId":"',
            { 'Fn::FindInMap': ['Env', { Ref: 'AWS::Region' }, 'stage'] },
            '"},"Next":"Activity"},"Activity":{"Type":"Task","Resource":"',
            { Ref: 'Work' },
            '","TimeoutSeconds":${Timeout},"End":true}}}',
          ],
        ],
      };
      const rendered = renderStateMachineDefinitions({
        Mappings: { Env: { 'us-east-1': { stage: 'prod' } } },
        Resources: {
          Topic: { Type: 'AWS::SNS::Topic' },
          Work: { Type: 'AWS::StepFunctions::Activity' },
          Bucket: { Type: 'AWS::S3::Bucket' },
          Machine: {
            Type: 'AWS::StepFunctions::StateMachine',
            Properties: { DefinitionString: definition, DefinitionSubstitutions: { Timeout: 60 } },
          },
        },
      }) as Array<{ definition: Json }>;

      const states = rendered[0].definition.States;
      expect(states.Publish.Parameters).toEqual({
        TopicArn: placeholderArn('Topic'),
        Message: `us-east-1/placeholder-import-shared-name/${placeholderArn('Bucket')}/${placeholderRef('Bucket')}/\${Literal}`,
        Subject: 'b',
        MessageGroupId: `${placeholderRef('Bucket')}-split-5`,
        MessageDeduplicationId: 'prod',
      });
      expect(states.Activity.Resource).toBe(placeholderArn('Work'));
      expect(states.Activity.TimeoutSeconds).toBe(60);
      expectValidStateMachines({ Resources: { M: { Type: 'AWS::StepFunctions::StateMachine', Properties: { Definition: rendered[0].definition } } } });
    });

    test('the Definition object form renders nested intrinsics and substitutions', () => {
      const rendered = renderStateMachineDefinitions({
        Resources: {
          Fn: { Type: 'AWS::Lambda::Function' },
          Machine: {
            Type: 'AWS::StepFunctions::StateMachine',
            Properties: {
              Definition: {
                StartAt: 'Invoke',
                States: {
                  Invoke: {
                    Type: 'Task',
                    Resource: { 'Fn::GetAtt': ['Fn', 'Arn'] },
                    Comment: '${Note}',
                    End: true,
                  },
                },
              },
              DefinitionSubstitutions: { Note: { 'Fn::Sub': 'in ${AWS::AccountId}' } },
            },
          },
        },
      });

      expect(rendered).toEqual([
        {
          logicalId: 'Machine',
          definition: {
            StartAt: 'Invoke',
            States: { Invoke: { Type: 'Task', Resource: placeholderArn('Fn'), Comment: 'in 123456789012', End: true } },
          },
        },
      ]);
      expect(validateAsl(rendered[0].definition).valid).toBe(true);
    });

    test('a rendered string that is not JSON throws naming the logical id', () => {
      expect(() => renderStateMachineDefinitions(templateWith({ 'Fn::Join': ['', ['{"StartAt":', { Ref: 'X' }, '}']] }))).toThrow(
        /State machine Machine: rendered DefinitionString is not valid JSON/,
      );
    });
  });
});
