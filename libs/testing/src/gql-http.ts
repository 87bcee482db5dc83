/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL answers in tests are untyped JSON unless the caller names a type */

/**
 * The one GraphQL client over HTTP for tests, benchmarks and the demo. It keeps the status
 * and headers (429 and 503 with Retry-After are part of the contract) and never throws on
 * a GraphQL error: `request` returns it, `ok` throws it.
 */
export interface GqlError {
  message: string;
  extensions?: Record<string, any>;
  path?: string[];
}

export interface GqlResponse<T = Record<string, any>> {
  status: number;
  headers: Headers;
  data?: T | null;
  errors?: GqlError[];
}

export class GqlHttp {
  constructor(
    /** http://host:port/graphql */
    readonly url: string,
    /** sent as `authorization: Bearer <key>`; none = anonymous */
    readonly apiKey?: string | null,
  ) {}

  withKey(apiKey: string | null): GqlHttp {
    return new GqlHttp(this.url, apiKey);
  }

  async request<T = Record<string, any>>(query: string, variables?: Record<string, unknown>): Promise<GqlResponse<T>> {
    const res = await fetch(this.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {}),
      },
      body: JSON.stringify({ query, variables }),
    });
    const text = await res.text();
    let body: { data?: T | null; errors?: GqlError[] };
    try {
      body = JSON.parse(text);
    } catch {
      body = { errors: [{ message: `non-JSON response (${res.status}): ${text.slice(0, 300)}` }] };
    }
    return { status: res.status, headers: res.headers, data: body.data, errors: body.errors };
  }

  /** Like request, but throws on any error; returns data. */
  async ok<T = Record<string, any>>(query: string, variables?: Record<string, unknown>): Promise<T> {
    const r = await this.request<T>(query, variables);
    if (r.errors?.length || !r.data) throw new Error(`GraphQL error (${r.status}): ${JSON.stringify(r.errors)}`);
    return r.data;
  }
}

/** One request with this key (a shorthand for `new GqlHttp(url, key).request(...)`). */
export function gql<T = Record<string, any>>(
  url: string,
  key: string | null,
  query: string,
  variables?: Record<string, unknown>,
): Promise<GqlResponse<T>> {
  return new GqlHttp(url, key).request<T>(query, variables);
}

/** One request with this key that must succeed; returns data. */
export function gqlOk<T = Record<string, any>>(
  url: string,
  key: string | null,
  query: string,
  variables?: Record<string, unknown>,
): Promise<T> {
  return new GqlHttp(url, key).ok<T>(query, variables);
}

/** The first error's `extensions.code` (UNAUTHENTICATED, FORBIDDEN, RATE_LIMITED, …). */
export const codeOf = (r: GqlResponse<unknown>): string | undefined =>
  r.errors?.[0]?.extensions?.code as string | undefined;
