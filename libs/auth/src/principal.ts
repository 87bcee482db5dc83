/** Who is calling: resolved from an API key by the Authenticator. */
export const ROLES = ["ADMIN", "TENANT", "FINANCE"] as const;
export type Role = (typeof ROLES)[number];

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
