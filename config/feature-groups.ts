import type { PlatformConfigInput } from './schema';

type FeatureGroupInput = NonNullable<PlatformConfigInput['featureStore']>['groups'][number];

/**
 * The feature groups every environment serves. The README's feature catalogue is generated from
 * these definitions (`npm run catalogue`); a test fails when it is stale.
 */
export const customerChurnFeatures: FeatureGroupInput = {
  name: 'customer-churn-features',
  description: 'Account, billing and support signals of each customer, for the churn model.',
  owner: 'customer-analytics',
  recordIdentifier: 'customer_id',
  eventTime: 'event_time',
  features: [
    { name: 'customer_id', type: 'string', description: 'Customer account id (the record identifier).' },
    { name: 'event_time', type: 'string', description: 'When the values were observed, ISO-8601 in UTC.' },
    { name: 'tenure_months', type: 'integral', description: 'Whole months since the account was opened.' },
    { name: 'monthly_charges', type: 'fractional', description: 'Average monthly bill over the last three months, in USD.' },
    { name: 'support_tickets_30d', type: 'integral', description: 'Support tickets opened in the last 30 days.' },
    { name: 'contract_type', type: 'string', description: 'Contract: month-to-month, one-year or two-year.' },
  ],
};
