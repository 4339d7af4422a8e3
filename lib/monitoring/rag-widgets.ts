import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type { DocumentIngestion } from '../genai/document-ingestion';
import type { RagApi } from '../genai/rag-api';
import type { RagGuardrail } from '../genai/rag-guardrail';

/** Dashboard widgets of the RAG pattern: ingestion health, answers and empty retrievals, guardrail interventions. */
export function ragWidgets(ingestion: DocumentIngestion, api: RagApi, guardrail: RagGuardrail): cloudwatch.IWidget[] {
  return [
    new cloudwatch.GraphWidget({
      title: 'RAG ingestion: documents indexed and rejected, events in the dead-letter queue',
      left: [ingestion.metricDocumentsIndexed({ label: 'indexed' }), ingestion.metricDocumentsRejected({ label: 'rejected' })],
      right: [ingestion.metricDeadLetters({ label: 'dead letters' })],
      width: 8,
      height: 6,
    }),
    new cloudwatch.GraphWidget({
      title: 'RAG API: answers, empty retrievals and 5xx',
      left: [api.metricAnswers({ label: 'answers' }), api.metricEmptyRetrievals({ label: 'no relevant passage' })],
      right: [api.api.metricServerError({ label: '5xx', statistic: 'Sum' })],
      width: 8,
      height: 6,
    }),
    new cloudwatch.GraphWidget({
      title: 'RAG guardrail: invocations and interventions',
      left: [guardrail.metricInvocations({ label: 'invocations' }), guardrail.metricInvocationsIntervened({ label: 'intervened' })],
      right: [api.metricGuardrailInterventions({ label: 'questions stopped (API)' })],
      width: 8,
      height: 6,
    }),
  ];
}
