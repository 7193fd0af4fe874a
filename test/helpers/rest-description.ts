import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";

/**
 * Checks recorded requests against GitHub's REST description, the OpenAPI document GitHub
 * publishes (https://github.com/github/rest-api-description), as packaged by @octokit/openapi:
 * the route and method, the path and query parameters, and the JSON body. Headers are not
 * checked. The description is read on the first check (about 70 MB of JSON, a second or two), and
 * only what requests need of it is kept.
 */
export interface RecordedRequest {
  method: string;
  /** Without the query and without GHES's `/api/v3` prefix. */
  path: string;
  /** `?a=1&b=2`, `a=1&b=2` or parsed. */
  query?: string | URLSearchParams;
  /** The parsed JSON body; `undefined` or `null` when none was sent. */
  body?: unknown;
}

export interface RestDescription {
  /** What is wrong with `request`, one sentence each; `[]` when it matches the description. */
  check(request: RecordedRequest): string[];
  /** `check` over each request, each problem prefixed with `METHOD path`. */
  checkAll(requests: readonly RecordedRequest[]): string[];
}

type Schema = Record<string, unknown>;

interface Parameter {
  name: string;
  in: string;
  required?: boolean;
  schema?: Schema;
}

interface Operation {
  operationId: string;
  parameters?: Parameter[];
  requestBody?: { required?: boolean; content: Record<string, { schema?: Schema }> };
}

/** One path template of the description and its operations by method. */
interface Route {
  template: string;
  pattern: RegExp;
  /** The parameter each capture group of `pattern` holds. */
  names: string[];
  literalSegments: number;
  params: number;
  operations: Map<string, Operation>;
}

interface CompiledOperation {
  parameters: ValidateFunction;
  /** Undefined when the operation takes no JSON body. */
  body: ValidateFunction | undefined;
}

const DESCRIPTION = "@octokit/openapi/generated/api.github.com.deref.json";
const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

export function createRestDescription(): RestDescription {
  // The description is large: read on the first check, then only the routes are kept.
  const loaded: { routes?: Route[] } = {};
  const compiled = new Map<string, CompiledOperation>();
  // Formats (date-time, uri…) are not checked: ajv knows none without ajv-formats, and warns
  // about each unknown one.
  const bodies = new Ajv({ strict: false, allErrors: true, verbose: true, validateFormats: false });
  // Path and query values arrive as strings: coerced to the integer or boolean the schema wants.
  const parameters = new Ajv({
    strict: false,
    allErrors: true,
    verbose: true,
    validateFormats: false,
    coerceTypes: "array",
  });

  function routes(): Route[] {
    loaded.routes ??= loadRoutes();
    return loaded.routes;
  }

  function compile(operation: Operation): CompiledOperation {
    const cached = compiled.get(operation.operationId);
    if (cached) return cached;
    const params = operation.parameters ?? [];
    const group = (where: string) => {
      const own = params.filter((p) => p.in === where);
      return {
        type: "object",
        properties: Object.fromEntries(own.map((p) => [p.name, toJsonSchema(p.schema ?? {})])),
        required: own.filter((p) => p.required || where === "path").map((p) => p.name),
        additionalProperties: false,
      };
    };
    const json = operation.requestBody?.content["application/json"]?.schema;
    const result: CompiledOperation = {
      parameters: parameters.compile({
        type: "object",
        properties: { path: group("path"), query: group("query") },
      }),
      body: json ? bodies.compile(toJsonSchema(json)) : undefined,
    };
    compiled.set(operation.operationId, result);
    return result;
  }

  function check(request: RecordedRequest): string[] {
    const method = request.method.toUpperCase();
    const matches = routes()
      .map((route) => ({ route, match: route.pattern.exec(request.path) }))
      .filter((m): m is { route: Route; match: RegExpExecArray } => m.match !== null);
    const candidates = matches.filter((m) => m.route.operations.has(method));
    if (candidates.length === 0) {
      if (matches.length === 0)
        return [`no operation in GitHub's REST description has the path ${request.path}`];
      const { route } = matches[0]!;
      const allowed = [...route.operations.keys()].join(", ");
      return [`${route.template} has no ${method} operation (it has ${allowed})`];
    }
    // The most specific template whose path parameters are valid: `pulls/comments` is not pull
    // number "comments".
    const tried = candidates.map(({ route, match }) => {
      const operation = route.operations.get(method)!;
      const query = queryOf(request.query);
      const path = Object.fromEntries(
        route.names.map((name, i) => [name, decodeURIComponent(match[i + 1] ?? "")]),
      );
      const { parameters: validate, body } = compile(operation);
      const problems = validate({ path, query })
        ? []
        : describe(operation.operationId, validate.errors);
      const pathValid = !problems.some((p) => p.startsWith(`${operation.operationId}: path.`));
      return { operation, problems, body, pathValid };
    });
    const chosen = tried.find((t) => t.pathValid) ?? tried[0]!;
    return [...chosen.problems, ...checkBody(chosen.operation, chosen.body, request.body)];
  }

  return {
    check,
    checkAll: (requests) =>
      requests.flatMap((r) => check(r).map((problem) => `${r.method} ${r.path}: ${problem}`)),
  };
}

function checkBody(
  operation: Operation,
  validate: ValidateFunction | undefined,
  body: unknown,
): string[] {
  const id = operation.operationId;
  const sent = body !== undefined && body !== null;
  if (!operation.requestBody) return sent ? [`${id}: takes no body, but one was sent`] : [];
  if (!sent)
    return operation.requestBody.required ? [`${id}: body is required, but none was sent`] : [];
  // A body of another media type (raw Markdown, a release asset) is not JSON to check.
  if (!validate) return [];
  return validate(body) ? [] : describe(id, validate.errors, "body");
}

/**
 * The query as the validator takes it: `name[]` keys read as `name`, and a repeated key as a list
 * (an error unless the parameter is an array).
 */
function queryOf(query: RecordedRequest["query"]): Record<string, string | string[]> {
  const params = typeof query === "object" ? query : new URLSearchParams(query ?? "");
  const values: Record<string, string | string[]> = {};
  for (const key of new Set(params.keys())) {
    const all = params.getAll(key);
    const name = key.endsWith("[]") ? key.slice(0, -2) : key;
    values[name] = key.endsWith("[]") || all.length > 1 ? all : all[0]!;
  }
  return values;
}

/** One sentence per validation error, naming the operation and the field. */
function describe(
  operationId: string,
  errors: ErrorObject[] | null | undefined,
  root?: string,
): string[] {
  const sentences = (errors ?? []).flatMap((error) => {
    const field = fieldOf(error.instancePath, root);
    const params = error.params as Record<string, unknown>;
    switch (error.keyword) {
      case "required":
        return [`${join(field, String(params.missingProperty))} is required`];
      case "additionalProperties": {
        const name = join(field, String(params.additionalProperty));
        return [`${name} is not a ${field === "query" ? "query parameter" : "field"} it takes`];
      }
      case "enum": {
        const allowed = (params.allowedValues as unknown[]).map((v) => JSON.stringify(v));
        return [`${field} must be one of ${allowed.join(", ")}, got ${show(error.data)}`];
      }
      // The branches' own errors say what is wrong; this one adds nothing.
      case "anyOf":
      case "oneOf":
        return [`${field} ${error.message}`];
      default:
        return [`${field} ${error.message}, got ${show(error.data)}`];
    }
  });
  return [...new Set(sentences)].map((s) => `${operationId}: ${s}`);
}

/** `/comments/0/path` under `body` → `body.comments[0].path`. */
function fieldOf(instancePath: string, root: string | undefined): string {
  const parts = instancePath.split("/").slice(1);
  return parts.reduce<string>(
    (field, part) => (/^\d+$/.test(part) ? `${field}[${part}]` : join(field, decodePointer(part))),
    root ?? "",
  );
}

function join(field: string, name: string): string {
  return field ? `${field}.${name}` : name;
}

function decodePointer(part: string): string {
  return part.replace(/~1/g, "/").replace(/~0/g, "~");
}

function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/**
 * The description is OpenAPI 3.0: `nullable` without a `type` (on a `oneOf`, say) is not JSON
 * Schema, and ajv refuses it. Such a schema becomes "it, or null".
 */
function toJsonSchema(schema: unknown): Schema {
  return convert(schema) as Schema;
}

function convert(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(convert);
  if (typeof value !== "object" || value === null) return value;
  const entries = Object.entries(value).map(([k, v]) => [k, k === "example" ? v : convert(v)]);
  const object = Object.fromEntries(entries) as Schema;
  if (object.nullable !== true || "type" in object) return object;
  delete object.nullable;
  return { anyOf: [object, { type: "null" }] };
}

function loadRoutes(): Route[] {
  const file = createRequire(import.meta.url).resolve(DESCRIPTION);
  const description = JSON.parse(readFileSync(file, "utf8")) as {
    paths: Record<string, Record<string, Operation | Parameter[]>>;
  };
  const list = Object.entries(description.paths).map(([template, item]) => {
    const operations = new Map<string, Operation>();
    for (const [method, operation] of Object.entries(item)) {
      if (!METHODS.includes(method)) continue;
      const op = operation as Operation;
      // Keep only what requests are checked against; the responses are most of the file.
      operations.set(method.toUpperCase(), {
        operationId: op.operationId,
        ...(op.parameters ? { parameters: op.parameters } : {}),
        ...(op.requestBody ? { requestBody: op.requestBody } : {}),
      });
    }
    return { template, ...compileTemplate(template, [...operations.values()]), operations };
  });
  // Literal segments beat parameters (`pulls/comments` before `pulls/{pull_number}`), and one
  // parameter beats two (`compare/{basehead}` before the older `compare/{base}...{head}`).
  return list.sort((a, b) => b.literalSegments - a.literalSegments || a.params - b.params);
}

/**
 * A template as a regular expression: a parameter is one path segment, or more for those the
 * description marks `x-multi-segment` (`contents/{path}`, `compare/{basehead}`, `git/ref/{ref}`).
 */
function compileTemplate(template: string, operations: Operation[]) {
  const multi = new Set(
    operations.flatMap((op) =>
      (op.parameters ?? [])
        .filter((p) => p.in === "path" && (p as { "x-multi-segment"?: boolean })["x-multi-segment"])
        .map((p) => p.name),
    ),
  );
  const names: string[] = [];
  const source = template
    .split(/(\{[^}]+\})/)
    .map((part) => {
      const param = /^\{([^}]+)\}$/.exec(part);
      if (!param) return part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      names.push(param[1]!);
      return multi.has(param[1]!) ? "(.+?)" : "([^/]+?)";
    })
    .join("");
  const segments = template.split("/").slice(1);
  return {
    pattern: new RegExp(`^${source}$`),
    names,
    literalSegments: segments.filter((s) => !s.includes("{")).length,
    params: names.length,
  };
}
