import type { Role } from "@lite/core";

// The role names are the vocabulary's; re-exported because a principal is described by them.
export type { Role };

/** Who is calling: resolved from an API key by the Authenticator. */

export interface Principal {
  role: Role;
  apiKeyId: string;
  /** set for role TENANT only */
  tenantId: string | null;
}

/** The audit log's actor string for a principal. */
export function actorOf(principal: Principal | null): string {
  return principal ? `${principal.role.toLowerCase()}:${principal.apiKeyId}` : "anonymous";
}
