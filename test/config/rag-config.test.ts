import { loadConfig, type PlatformConfigInput } from '../../config';
import { configProblems } from '../support/config-problems';
import { dev } from '../../config/dev';
import { prod } from '../../config/prod';

/** The problems of a shipped config after changing its rag section. */
const problems = (base: PlatformConfigInput, mutate: (rag: any) => void): string[] => configProblems(base, (config) => mutate(config.rag));

describe('the rag config section', () => {
  test('dev is one small node in one zone; prod is multi-AZ with dedicated masters and retained data', () => {
    expect(loadConfig('dev').rag?.domain).toEqual({ engineVersion: '2.19', dataNodes: 1, dataNodeInstanceType: 't3.medium.search', ebsVolumeSizeGiB: 10, availabilityZoneCount: 1 });
    const config = loadConfig('prod');
    expect(config.retainData).toBe(true);
    expect(config.rag?.domain).toMatchObject({ dataNodes: 3, masterNodes: 3, availabilityZoneCount: 3 });
    expect(loadConfig('staging').rag?.domain.availabilityZoneCount).toBe(2);
  });

  test('each environment pins a prompt version', () => {
    for (const envName of ['dev', 'staging', 'prod']) expect(loadConfig(envName).rag?.prompt.pinnedVersion).toMatch(/^\S+$/);
  });

  test.each([
    [(rag: any) => (rag.prompt.template = 'Question: {{question}} in {{tone}}'), 'rag.prompt.template: unknown variable {{tone}}, missing variable {{context}}; the RAG API fills in {{context}} and {{question}}'],
    [(rag: any) => (rag.domain.dataNodeInstanceType = 'm5.gigantic.search'), 'rag.domain.dataNodeInstanceType: must be an OpenSearch Service instance type'],
    [(rag: any) => (rag.generationModelId = 'us.anthropic.claude-3-haiku-20240307-v1:0'), "rag.generationModelId: 'us.anthropic.claude-3-haiku-20240307-v1:0' is a cross-region inference profile"],
    [(rag: any) => (rag.chunking.overlap = 1000), 'rag.chunking.overlap: must be below chunking.size (1000)'],
    [(rag: any) => (rag.index.dimension = 768), 'rag.embeddingModelId: amazon.titan-embed-text-v2:0 returns vectors of 256 or 512 or 1024 dimensions; the index has 768'],
    [(rag: any) => Object.assign(rag, { embeddingModelId: 'cohere.embed-english-v3', chunking: { size: 3000, overlap: 100 } }), 'rag.chunking.size: cohere.embed-english-v3 embeds at most 2048 characters per text; got 3000'],
    [(rag: any) => (rag.index.spaceType = 'cosinesimil'), 'rag.index.spaceType: the faiss engine supports l2, innerproduct'],
    [(rag: any) => (rag.index.replicas = 1), 'rag.index.replicas: 1 replicas need at least 2 data nodes; domain.dataNodes is 1'],
    [(rag: any) => (rag.guardrail.piiEntities = [{ type: 'SHOE_SIZE', action: 'BLOCK' }]), 'rag.guardrail.piiEntities[0].type: Invalid option'],
    [(rag: any) => (rag.guardrail.contentFilters = [{ type: 'PROMPT_ATTACK', inputStrength: 'HIGH', outputStrength: 'HIGH' }]), 'rag.guardrail.contentFilters[0].outputStrength: PROMPT_ATTACK only applies to input; set NONE'],
  ])('names the field of a bad value (%#)', (mutate, message) => {
    expect(problems(dev, mutate).join('\n')).toContain(message);
  });

  test('a cohere model with chunks that fit is accepted', () => {
    expect(problems(dev, (rag) => Object.assign(rag, { embeddingModelId: 'cohere.embed-multilingual-v3', chunking: { size: 1500, overlap: 100 } }))).toEqual([]);
  });

  test('prod data nodes must spread evenly over its zones', () => {
    expect(problems(prod, (rag) => (rag.domain.dataNodes = 4))).toContain('rag.domain.dataNodes: must be a multiple of domain.availabilityZoneCount (3)');
  });
});
