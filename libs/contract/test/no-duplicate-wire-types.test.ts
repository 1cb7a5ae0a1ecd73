/**
 * The wire types are declared once, in @celfarm/contract. This test reads the API, the CLI, the
 * dashboard and the test harness as TypeScript and fails, naming the file and line, on any
 * declaration that copies one: an interface, type alias, class or zod schema of a name the
 * contract exports, or an object type or `z.object({…})` with the same fields as one of its
 * object schemas (a copy under another name). Re-exports (`export type { ShotView } from
 * '@celfarm/contract'`) are not copies.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';
import { z } from 'zod';
import * as contract from '../src/index.ts';

const ROOT = resolve(import.meta.dirname, '../../..');
const CONTRACT_SRC = join(ROOT, 'libs/contract/src');

/** Where wire types are read and written; each must take them from the contract. */
const SCANNED = ['apps/api/src', 'apps/cli/src', 'apps/dashboard/src', 'apps/worker/src', 'test/harness.ts'];

/** An object type with fewer fields than this is too small to call a copy (`{id, url}` is everywhere). */
const MIN_FIELDS = 4;

/** Declarations whose fields match a contract schema's without being a copy of it, and why. */
const NOT_COPIES: Record<string, string> = {
  'apps/cli/src/inputs.ts ShotInputs': 'files read from disk (path and bytes), which the CLI sends as a multipart submit',
};

function sourceFiles(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path).flatMap((n) => (n === 'node_modules' || n === 'dist' ? [] : sourceFiles(join(path, n)))).filter((f) => /\.tsx?$/.test(f));
}

function parse(file: string, text = readFileSync(file, 'utf8')): ts.SourceFile {
  return ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, file.endsWith('.tsx') ? ts.ScriptKind.TSX : ts.ScriptKind.TS);
}

/** Every name the contract exports: its declarations and its re-exports, types included. */
function contractNames(): Set<string> {
  const names = new Set<string>();
  for (const file of sourceFiles(CONTRACT_SRC)) {
    for (const st of parse(file).statements) {
      const exported = ts.canHaveModifiers(st) && ts.getModifiers(st)?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
      if (ts.isExportDeclaration(st) && st.exportClause && ts.isNamedExports(st.exportClause)) {
        for (const el of st.exportClause.elements) names.add(el.name.text);
      } else if (exported && ts.isVariableStatement(st)) {
        for (const d of st.declarationList.declarations) if (ts.isIdentifier(d.name)) names.add(d.name.text);
      } else if (exported && (ts.isInterfaceDeclaration(st) || ts.isTypeAliasDeclaration(st) || ts.isClassDeclaration(st) || ts.isFunctionDeclaration(st)) && st.name) {
        names.add(st.name.text);
      }
    }
  }
  return names;
}

/** The field sets of the contract's object schemas, by export name. */
function contractShapes(): Map<string, string[]> {
  const shapes = new Map<string, string[]>();
  for (const [name, value] of Object.entries(contract)) {
    if (value instanceof z.ZodObject) shapes.set(name, Object.keys(value.shape).sort());
  }
  return shapes;
}

interface Declaration {
  where: string;
  name?: string;
  kind: string;
  fields?: string[];
}

const isZodCall = (node: ts.Node): node is ts.CallExpression => {
  if (!ts.isCallExpression(node)) return false;
  let callee: ts.Expression = node.expression;
  while (ts.isPropertyAccessExpression(callee) || ts.isCallExpression(callee)) callee = ts.isCallExpression(callee) ? callee.expression : callee.expression;
  return ts.isIdentifier(callee) && callee.text === 'z';
};

const fieldsOf = (members: ts.NodeArray<ts.TypeElement> | ts.NodeArray<ts.ObjectLiteralElementLike>): string[] =>
  members.flatMap((m) => (m.name && (ts.isIdentifier(m.name) || ts.isStringLiteral(m.name)) ? [m.name.text] : [])).sort();

function declarationsIn(file: string, text?: string): Declaration[] {
  const source = parse(file, text);
  const out: Declaration[] = [];
  const where = (node: ts.Node) => `${relative(ROOT, file)}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}`;
  const visit = (node: ts.Node): void => {
    if (ts.isInterfaceDeclaration(node)) out.push({ where: where(node), name: node.name.text, kind: 'interface', fields: fieldsOf(node.members) });
    else if (ts.isTypeAliasDeclaration(node)) {
      out.push({ where: where(node), name: node.name.text, kind: 'type', ...(ts.isTypeLiteralNode(node.type) ? { fields: fieldsOf(node.type.members) } : {}) });
    } else if (ts.isClassDeclaration(node) && node.name) out.push({ where: where(node), name: node.name.text, kind: 'class' });
    else if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name) && node.initializer && isZodCall(node.initializer)) {
      out.push({ where: where(node), name: node.name.text, kind: 'zod schema' });
    } else if (ts.isTypeLiteralNode(node) && !ts.isTypeAliasDeclaration(node.parent)) {
      out.push({ where: where(node), kind: 'object type', fields: fieldsOf(node.members) });
    }
    if (isZodCall(node) && ts.isPropertyAccessExpression(node.expression) && /^(object|strictObject|looseObject)$/.test(node.expression.name.text)) {
      const shape = node.arguments[0];
      if (shape && ts.isObjectLiteralExpression(shape)) out.push({ where: where(node), kind: 'z.object', fields: fieldsOf(shape.properties) });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

const NAMES = contractNames();
const SHAPES = contractShapes();

/** The declarations of `file` that copy a contract type, as messages naming file and line. */
function copiesIn(file: string, text?: string): string[] {
  const copies: string[] = [];
  for (const d of declarationsIn(file, text)) {
    if (d.name !== undefined && NOT_COPIES[`${d.where.replace(/:\d+$/, '')} ${d.name}`]) continue;
    if (d.name !== undefined && NAMES.has(d.name)) copies.push(`${d.where}: ${d.kind} ${d.name} is declared by @celfarm/contract; import it from there`);
    else if (d.fields && d.fields.length >= MIN_FIELDS) {
      const same = [...SHAPES].find(([, fields]) => fields.join() === d.fields!.join());
      if (same) copies.push(`${d.where}: ${d.kind}${d.name ? ` ${d.name}` : ''} has the fields of @celfarm/contract's ${same[0]}; use it`);
    }
  }
  return copies;
}

describe('the wire contract is declared once', () => {
  it('knows what the contract exports, types included', () => {
    for (const name of ['ShotView', 'FrameView', 'ShotSummary', 'ShotList', 'ApiError', 'ApiErrorBody', 'ErrorInfo', 'WebhookView', 'DeliveryAttempt', 'LiveShot', 'FarmEvent', 'WhoAmI']) {
      assert.ok(NAMES.has(name), `the contract exports ${name}`);
    }
    assert.ok(SHAPES.get('frameViewSchema')?.includes('previewUrl'));
  });

  it('has no copy of a contract type or schema in the API, the CLI, the dashboard, the worker or the harness', () => {
    assert.deepEqual(
      SCANNED.flatMap((p) => sourceFiles(join(ROOT, p))).flatMap((f) => copiesIn(f)),
      [],
    );
  });

  it('catches a copy by its name, and one under another name by its fields', () => {
    const file = join(ROOT, 'apps/cli/src/copy.ts');
    assert.deepEqual(copiesIn(file, 'export interface ShotView { id: string }'), [
      'apps/cli/src/copy.ts:1: interface ShotView is declared by @celfarm/contract; import it from there',
    ]);
    const fields = SHAPES.get('deliveryAttemptSchema')!.map((f) => `${f}?: unknown;`).join(' ');
    assert.deepEqual(copiesIn(file, `const x = 1;\ntype Attempt = { ${fields} };`), [
      "apps/cli/src/copy.ts:2: type Attempt has the fields of @celfarm/contract's deliveryAttemptSchema; use it",
    ]);
    assert.deepEqual(copiesIn(file, 'const s = z.object({ at: z.string(), eventId: z.string() });\nconst errorInfoSchema = z.object({});'), [
      'apps/cli/src/copy.ts:2: zod schema errorInfoSchema is declared by @celfarm/contract; import it from there',
    ]);
  });
});
