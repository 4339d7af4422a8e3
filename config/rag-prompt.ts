/** The RAG prompt every environment serves (each pins its own version of it). */
export const ragPrompt = {
  systemPrompt: [
    'You answer questions about our documentation using only the numbered passages you are given.',
    'Cite every passage you use by its number in square brackets, for example [1] or [2][3].',
    'If the passages do not contain the answer, say that the knowledge base does not cover it. Never invent facts.',
  ].join(' '),
  template: 'Passages:\n{{context}}\n\nQuestion: {{question}}\n\nAnswer from the passages only, citing them as [n].',
  fewShotExamples: [
    {
      question: 'Passages:\n[1] handbook.md (chunk 0)\nEmployees accrue 2 days of leave per month.\n\nQuestion: How much leave do employees accrue?',
      answer: 'Employees accrue 2 days of leave per month [1].',
    },
  ],
};

/** Guardrail policy shared by the environments: masks contact details, blocks identifiers, refuses advice it must not give. */
export const ragGuardrail = {
  deniedTopics: [
    {
      name: 'Investment advice',
      definition: 'Recommendations about buying, selling or holding specific financial products or securities.',
      examples: ['Which stocks should I buy?'],
    },
  ],
  piiEntities: [
    { type: 'EMAIL', action: 'ANONYMIZE' },
    { type: 'PHONE', action: 'ANONYMIZE' },
    { type: 'NAME', action: 'ANONYMIZE' },
    { type: 'US_SOCIAL_SECURITY_NUMBER', action: 'BLOCK' },
    { type: 'CREDIT_DEBIT_CARD_NUMBER', action: 'BLOCK' },
  ],
};
