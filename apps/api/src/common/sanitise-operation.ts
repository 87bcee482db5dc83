import {
  GraphQLID,
  GraphQLString,
  Kind,
  SchemaMetaFieldDef,
  TypeMetaFieldDef,
  getArgumentValues,
  getNamedType,
  getNullableType,
  getVariableValues,
  isCompositeType,
  isInputObjectType,
  isListType,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type GraphQLField,
  type GraphQLInputType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from "graphql";
import type { Role } from "@lite/core";
import {
  checkCursor,
  checkId,
  checkString,
  echo,
  ID_KIND_BY_COORDINATE,
  ID_KIND_BY_NAME,
  PROMPT_COORDINATE,
  STRING_MAX_BY_COORDINATE,
} from "./input-limits";

/**
 * The sanitising edge: one pass over the operation about to run, before any resolver (no
 * admission, no audit row, no lookup sees a refused value). Every ID and String argument,
 * literal or variable, nested input fields and list items included, is checked against
 * input-limits.ts. Root fields the caller's role may not call are skipped: they answer
 * FORBIDDEN whatever their arguments (the contract's order), and never read them.
 *
 * The walk is iterative (no recursion on the document's nesting) and visits each fragment
 * once. Values that do not even coerce are left to graphql-js, which answers them
 * BAD_USER_INPUT naming the variable.
 */

export interface InputRefusal {
  /** argument path: `id`, `input.prices.0.unit` */
  field: string;
  message: string;
}

export interface SanitiseOptions {
  /** MAX_PROMPT_BYTES */
  maxPromptBytes: number;
  /** roles that may call a root field (`Query.me`), undefined when unguarded */
  rolesOf: (coordinate: string) => readonly Role[] | undefined;
}

export interface OperationToCheck {
  schema: GraphQLSchema;
  operation: OperationDefinitionNode;
  fragments: Readonly<Record<string, FragmentDefinitionNode>>;
  /** the request's raw variables */
  variables: Readonly<Record<string, unknown>> | undefined;
  role: Role;
}

function checkLeaf(
  value: string,
  type: GraphQLInputType,
  name: string,
  coordinate: string,
  opts: SanitiseOptions,
): string | null {
  const named = getNamedType(type);
  if (named === GraphQLID) return checkId(value, ID_KIND_BY_COORDINATE[coordinate] ?? ID_KIND_BY_NAME[name]);
  if (named !== GraphQLString) return null;
  if (name === "after") return checkCursor(value);
  if (coordinate === PROMPT_COORDINATE) return checkString(value, { maxBytes: opts.maxPromptBytes });
  return checkString(value, { maxChars: STRING_MAX_BY_COORDINATE[coordinate] });
}

interface Pending {
  value: unknown;
  type: GraphQLInputType;
  /** argument or input field name (lists keep their field's name) */
  name: string;
  coordinate: string;
  path: string;
}

/** One argument's coerced value, walked by its type. */
function checkArgument(start: Pending, opts: SanitiseOptions): InputRefusal | null {
  const todo: Pending[] = [start];
  for (let item = todo.pop(); item; item = todo.pop()) {
    const { value, name, coordinate, path } = item;
    if (value === null || value === undefined) continue;
    const type = getNullableType(item.type) as GraphQLInputType;
    if (isListType(type)) {
      if (!Array.isArray(value)) continue;
      value.forEach((v, i) => todo.push({ ...item, value: v, type: type.ofType, path: `${path}.${i}` }));
    } else if (isInputObjectType(type)) {
      for (const [fieldName, field] of Object.entries(type.getFields())) {
        const v = (value as Record<string, unknown>)[fieldName];
        todo.push({
          value: v,
          type: field.type,
          name: fieldName,
          coordinate: `${type.name}.${fieldName}`,
          path: `${path}.${fieldName}`,
        });
      }
    } else if (typeof value === "string") {
      const problem = checkLeaf(value, type, name, coordinate, opts);
      if (problem) return { field: path, message: `${path}: ${problem} (got ${echo(value)})` };
    }
  }
  return null;
}

function fieldDefOf(
  parent: GraphQLCompositeType,
  name: string,
  schema: GraphQLSchema,
): GraphQLField<unknown, unknown> | undefined {
  if (parent === schema.getQueryType()) {
    if (name === SchemaMetaFieldDef.name) return SchemaMetaFieldDef;
    if (name === TypeMetaFieldDef.name) return TypeMetaFieldDef;
  }
  return "getFields" in parent ? parent.getFields()[name] : undefined;
}

interface Frame {
  selectionSet: SelectionSetNode;
  parent: GraphQLCompositeType;
  root: boolean;
}

/** The first refused argument of the operation, or null. */
export function sanitiseOperation(op: OperationToCheck, opts: SanitiseOptions): InputRefusal | null {
  const { schema, operation } = op;
  const rootType = schema.getRootType(operation.operation);
  if (!rootType) return null;
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], op.variables ?? {}, { maxErrors: 1 });
  if (coerced.errors) return null; // graphql-js answers these itself (BAD_USER_INPUT naming the variable)
  const variables = coerced.coerced;
  const seenFragments = new Set<string>();
  const frames: Frame[] = [{ selectionSet: operation.selectionSet, parent: rootType, root: true }];
  for (let frame = frames.pop(); frame; frame = frames.pop()) {
    for (const sel of frame.selectionSet.selections) {
      if (sel.kind === Kind.FRAGMENT_SPREAD) {
        const fragment = op.fragments[sel.name.value];
        if (!fragment || seenFragments.has(sel.name.value)) continue;
        seenFragments.add(sel.name.value);
        const type = schema.getType(fragment.typeCondition.name.value);
        if (isCompositeType(type)) frames.push({ selectionSet: fragment.selectionSet, parent: type, root: frame.root });
        continue;
      }
      if (sel.kind === Kind.INLINE_FRAGMENT) {
        const type = sel.typeCondition ? schema.getType(sel.typeCondition.name.value) : frame.parent;
        if (isCompositeType(type)) frames.push({ selectionSet: sel.selectionSet, parent: type, root: frame.root });
        continue;
      }
      const def = fieldDefOf(frame.parent, sel.name.value, schema);
      if (!def) continue;
      const fieldCoordinate = `${frame.parent.name}.${def.name}`;
      const roles = frame.root ? opts.rolesOf(fieldCoordinate) : undefined;
      if (roles && !roles.includes(op.role)) continue;
      let args: Record<string, unknown>;
      try {
        args = getArgumentValues(def, sel, variables);
      } catch {
        continue; // a value that does not coerce: execution answers it
      }
      for (const arg of def.args) {
        const refusal = checkArgument(
          {
            value: args[arg.name],
            type: arg.type,
            name: arg.name,
            coordinate: `${fieldCoordinate}(${arg.name}:)`,
            path: arg.name,
          },
          opts,
        );
        if (refusal) return refusal;
      }
      const child = getNamedType(def.type);
      if (sel.selectionSet && isCompositeType(child))
        frames.push({ selectionSet: sel.selectionSet, parent: child, root: false });
    }
  }
  return null;
}
