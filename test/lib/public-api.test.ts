// The public API as a consumer meets it: what the package root (lib/index.ts) exports, listed in
// test/lib/public-api.txt so that an export added or removed by accident shows in review, and a check
// that every type the exported constructs' props, methods and properties name is exported too (a
// consumer cannot spell `VariantGuardrailOptions` in a helper of its own otherwise).
//
// After an intended change of the API: UPDATE_PUBLIC_API=1 npx jest test/lib/public-api.test.ts
import { readFileSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import * as ts from 'typescript';

const ROOT = join(__dirname, '..', '..');
const LIB = join(ROOT, 'lib');
const LISTING = join(__dirname, 'public-api.txt');

function program(): ts.Program {
  const configFile = ts.readConfigFile(join(ROOT, 'tsconfig.json'), ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(configFile.config, ts.sys, ROOT);
  return ts.createProgram([join(LIB, 'index.ts')], { ...parsed.options, noEmit: true });
}

function kindOf(symbol: ts.Symbol): string {
  const flags = symbol.flags;
  if (flags & ts.SymbolFlags.Class) return 'class';
  if (flags & ts.SymbolFlags.Interface) return 'interface';
  if (flags & ts.SymbolFlags.Enum) return 'enum';
  if (flags & ts.SymbolFlags.TypeAlias) return 'type';
  if (flags & ts.SymbolFlags.Function) return 'function';
  if (flags & ts.SymbolFlags.Variable) return 'const';
  return 'other';
}

const isInLib = (file: string) => {
  const path = relative(LIB, file);
  return !path.startsWith('..') && !path.split(sep).includes('node_modules');
};

/** Type references in the public surface of a declaration: not in function bodies, not in private or protected members. */
function publicTypeReferences(node: ts.Node, found: ts.Identifier[]): void {
  const modifiers = ts.canHaveModifiers(node) ? ts.getModifiers(node) : undefined;
  if (modifiers?.some((modifier) => modifier.kind === ts.SyntaxKind.PrivateKeyword || modifier.kind === ts.SyntaxKind.ProtectedKeyword)) return;
  if (ts.isPrivateIdentifier((node as ts.NamedDeclaration).name ?? node)) return;
  if (ts.isBlock(node)) return;
  if (ts.isPropertyDeclaration(node) && node.initializer && !node.type) return;
  if (ts.isTypeReferenceNode(node)) found.push(ts.isIdentifier(node.typeName) ? node.typeName : node.typeName.right);
  if (ts.isExpressionWithTypeArguments(node) && ts.isIdentifier(node.expression)) found.push(node.expression);
  ts.forEachChild(node, (child) => publicTypeReferences(child, found));
}

describe('the public API', () => {
  const prog = program();
  const checker = prog.getTypeChecker();
  const index = checker.getSymbolAtLocation(prog.getSourceFile(join(LIB, 'index.ts'))!)!;
  const exported = checker.getExportsOfModule(index).map((symbol) => ({ name: symbol.name, symbol: symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol }));
  const exportedSymbols = new Set(exported.map(({ symbol }) => symbol));

  test('is what test/lib/public-api.txt lists', () => {
    const listing = `${exported
      .map(({ name, symbol }) => `${kindOf(symbol)} ${name}`)
      .sort((a, b) => a.split(' ')[1].localeCompare(b.split(' ')[1]))
      .join('\n')}\n`;
    if (process.env.UPDATE_PUBLIC_API === '1') writeFileSync(LISTING, listing);
    expect(listing).toBe(readFileSync(LISTING, 'utf8'));
    expect(exported.length).toBeGreaterThan(100);
  });

  test('exports every type that an exported declaration names in its props, members or signature', () => {
    const missing = new Set<string>();
    for (const { name, symbol } of exported) {
      for (const declaration of symbol.declarations ?? []) {
        if (!isInLib(declaration.getSourceFile().fileName)) continue;
        // `export type InstanceCapacity = InstanceCapacitySpec`: the alias is the name a consumer spells.
        if (ts.isTypeAliasDeclaration(declaration) && ts.isTypeReferenceNode(declaration.type)) continue;
        const references: ts.Identifier[] = [];
        publicTypeReferences(declaration, references);
        for (const reference of references) {
          let target = checker.getSymbolAtLocation(reference);
          if (target && target.flags & ts.SymbolFlags.Alias) target = checker.getAliasedSymbol(target);
          // Type parameters, and types of aws-cdk-lib, constructs and the SDK, are not ours to export.
          const declaredIn = target?.declarations?.[0]?.getSourceFile().fileName;
          if (!target || !declaredIn || !isInLib(declaredIn) || target.flags & ts.SymbolFlags.TypeParameter) continue;
          if (!exportedSymbols.has(target)) missing.add(`${target.name} (${relative(ROOT, declaredIn)}), named by ${name}`);
        }
      }
    }
    expect([...missing].sort()).toEqual([]);
  });
});
