// Prompt templates of the RAG API: `{{variable}}` placeholders (the syntax of Bedrock Prompt Management),
// rendered into Converse content blocks. Pure: no AWS imports.
//
// The retrieved passages (`{{context}}`) and the question (`{{question}}`) are rendered as guardContent
// blocks qualified `grounding_source` and `query`, so that the guardrail's contextual grounding check
// knows what the answer must be grounded in and what it must be relevant to; the template's own words
// are plain text blocks. Joined, the blocks are exactly the rendered template.

/** The variables the RAG API fills in; a template must use every one and no other. */
export const RAG_PROMPT_VARIABLES = ['context', 'question'] as const;
export type RagPromptVariable = (typeof RAG_PROMPT_VARIABLES)[number];

const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;

export type TemplatePart = { readonly kind: 'text'; readonly text: string } | { readonly kind: 'variable'; readonly name: string };

/** The template as literal text and placeholders, in order. */
export function parseTemplate(template: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let last = 0;
  for (const match of template.matchAll(PLACEHOLDER)) {
    if (match.index > last) parts.push({ kind: 'text', text: template.slice(last, match.index) });
    parts.push({ kind: 'variable', name: match[1] });
    last = match.index + match[0].length;
  }
  if (last < template.length) parts.push({ kind: 'text', text: template.slice(last) });
  return parts;
}

/** Names of the template's placeholders, each once, in order of first use. */
export function templateVariables(template: string): string[] {
  return [...new Set(parseTemplate(template).flatMap((part) => (part.kind === 'variable' ? [part.name] : [])))];
}

/** Renders the template; throws naming the variable when one has no value. */
export function renderTemplate(template: string, values: Readonly<Record<string, string>>): string {
  return parseTemplate(template)
    .map((part) => {
      if (part.kind === 'text') return part.text;
      const value = values[part.name];
      if (value === undefined) throw new Error(`prompt template: no value for variable '{{${part.name}}}'`);
      return value;
    })
    .join('');
}

/** A Converse content block (the subset the RAG API sends). */
export type PromptContentBlock =
  | { readonly text: string }
  | { readonly guardContent: { readonly text: { readonly text: string; readonly qualifiers: Array<'grounding_source' | 'query' | 'guard_content'> } } };

/** Renders the RAG template into Converse content blocks (see the module comment). */
export function renderRagPromptBlocks(template: string, values: Readonly<Record<RagPromptVariable, string>>): PromptContentBlock[] {
  const blocks: PromptContentBlock[] = [];
  for (const part of parseTemplate(template)) {
    if (part.kind === 'text') {
      if (part.text !== '') blocks.push({ text: part.text });
      continue;
    }
    if (!(RAG_PROMPT_VARIABLES as readonly string[]).includes(part.name)) {
      throw new Error(`prompt template: unknown variable '{{${part.name}}}'; the RAG API fills in ${RAG_PROMPT_VARIABLES.map((name) => `{{${name}}}`).join(' and ')}`);
    }
    const name = part.name as RagPromptVariable;
    blocks.push({ guardContent: { text: { text: values[name], qualifiers: [name === 'context' ? 'grounding_source' : 'query'] } } });
  }
  return blocks;
}

/** The text a list of blocks stands for, as the model reads it. */
export function blocksText(blocks: readonly PromptContentBlock[]): string {
  return blocks.map((block) => ('text' in block ? block.text : block.guardContent.text.text)).join('');
}

export interface FewShotExample {
  readonly question: string;
  readonly answer: string;
}

export interface RagPromptConfig {
  readonly template: string;
  readonly systemPrompt: string;
  readonly fewShotExamples: readonly FewShotExample[];
}

/** The Converse messages of one question: the few-shot examples as earlier turns, then the rendered template. */
export function buildConverseMessages(prompt: RagPromptConfig, values: Readonly<Record<RagPromptVariable, string>>) {
  const examples = prompt.fewShotExamples.flatMap((example) => [
    { role: 'user' as const, content: [{ text: example.question }] },
    { role: 'assistant' as const, content: [{ text: example.answer }] },
  ]);
  return {
    system: [{ text: prompt.systemPrompt }],
    messages: [...examples, { role: 'user' as const, content: renderRagPromptBlocks(prompt.template, values) }],
  };
}
