import { loadConfig } from '../../config';
import { configProblems } from '../support/config-problems';
import { dev } from '../../config/dev';
import { prod } from '../../config/prod';
import { staging } from '../../config/staging';

const problems = configProblems;

describe('the modelMonitor section', () => {
  test('is on for the churn model in staging and prod, which capture data; dev leaves it off', () => {
    expect(loadConfig('dev').models[0].modelMonitor).toBeUndefined();
    const staged = loadConfig('staging').models[0];
    expect(staged.dataCapture).toBeDefined();
    expect(staged.modelMonitor).toMatchObject({ instanceType: 'ml.m5.xlarge', dataQuality: { schedule: 'hourly' }, modelQuality: { problemType: 'BinaryClassification' }, retrainingCooldownHours: 24 });
    const production = loadConfig('prod').models[0];
    expect(production.modelMonitor).toMatchObject({
      bias: { facets: [{ name: 'contract_type' }] },
      explainability: { numSamples: 100 },
      retrainingCooldownHours: 72,
      modelCard: { intendedUse: { riskRating: 'Medium' } },
    });
  });

  test('a schedule Model Monitor cannot run, a problem type and instance type outside the SDK enums, a risk rating outside the schema', () => {
    expect(
      problems(prod, (c) => {
        c.models[0].modelMonitor.dataQuality.schedule = 'every 5 minutes';
        c.models[0].modelMonitor.modelQuality.schedule = 'daily@24';
        c.models[0].modelMonitor.modelQuality.problemType = 'Ranking';
        c.models[0].modelMonitor.instanceType = 'ml.m5.huge';
        c.models[0].modelMonitor.modelCard.intendedUse.riskRating = 'Severe';
      }),
    ).toEqual([
      'models[0].modelMonitor.instanceType: must be a SageMaker processing instance type such as ml.m5.xlarge (AWS SDK ProcessingInstanceType)',
      'models[0].modelMonitor.dataQuality.schedule: must be hourly, daily or daily@HH (an hour of the day in UTC, 00-23)',
      'models[0].modelMonitor.modelQuality.schedule: must be hourly, daily or daily@HH (an hour of the day in UTC, 00-23)',
      'models[0].modelMonitor.modelQuality.problemType: must be one of BinaryClassification, MulticlassClassification, Regression (AWS SDK MonitoringProblemType)',
      'models[0].modelMonitor.modelCard.intendedUse.riskRating: must be one of High, Medium, Low, Unknown (the model card schema\'s risk ratings)',
    ]);
  });

  test('cross-field rules: data capture, facets and drift thresholds among the headers, one SHAP value per header, where the prediction is', () => {
    expect(
      problems(prod, (c) => {
        c.models[0].dataCapture = undefined; // drops the environment's default
        delete c.models[0].driftDetection;
        c.models[0].modelMonitor.bias.facets[0].name = 'gender';
        c.models[0].modelMonitor.explainability.shapBaseline = [1, 2];
        c.models[0].modelMonitor.featureDriftThresholds.zip_code = 0.2;
        delete c.models[0].modelMonitor.modelQuality.probabilityAttribute;
        c.models[0].modelMonitor.retrainingCooldownHours = 0;
      }),
    ).toEqual([
      'models[0].modelMonitor.retrainingCooldownHours: Too small: expected number to be >=1',
      "models[0].driftDetection: needs dataCapture: the detector reads churn's captured requests (the value comes from modelDefaults.driftDetection)",
      "models[0].modelMonitor: needs dataCapture: Model Monitor reads churn's captured requests",
      "models[0].modelMonitor.bias.facets[0].name: 'gender' is not one of headers (tenure_months, monthly_charges, support_tickets_30d, contract_type)",
      'models[0].modelMonitor.explainability.shapBaseline: needs one value per header (4); got 2',
      'models[0].modelMonitor.modelQuality: give inferenceAttribute or probabilityAttribute (where the prediction is in the captured output)',
      "models[0].modelMonitor.featureDriftThresholds.zip_code: 'zip_code' is not one of headers (tenure_months, monthly_charges, support_tickets_30d, contract_type)",
    ]);
  });

  test('no monitor switched on, Clarify without headers, and Clarify on a serverless-only model', () => {
    expect(problems(staging, (c) => (c.models[0].modelMonitor = { modelCard: c.models[0].modelMonitor.modelCard }))).toEqual([
      'models[0].modelMonitor: switch on at least one of dataQuality, modelQuality, bias, explainability',
    ]);
    expect(
      problems(dev, (c) => {
        c.models[0].dataCapture = { samplingPercentage: 10 };
        c.models[0].modelMonitor = { explainability: { shapBaseline: [1], probabilityAttribute: '0' } };
      }),
    ).toEqual(
      expect.arrayContaining([
        'models[0].modelMonitor.headers: explainability monitoring needs the feature names of the captured CSV',
        'models[0].modelMonitor.explainability: Clarify needs an instance-based production variant to start its shadow endpoint from',
      ]),
    );
  });
});
