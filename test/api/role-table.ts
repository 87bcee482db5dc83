import type { Role } from "@lite/core";

export type { Role };

/** The contract header's role table, transcribed once; the tests hold the API to it. */
const ALL: Role[] = ["ADMIN", "FINANCE", "TENANT"];
const OPS: Role[] = ["ADMIN", "FINANCE"];
const ADMIN_TENANT: Role[] = ["ADMIN", "TENANT"];

export const CONTRACT_ROLES: Record<string, Role[]> = {
  "Query.me": ALL,
  "Query.priceBook": ALL,
  "Query.models": ALL,
  "Query.tiers": ALL,
  "Query.tenant": ALL,
  "Query.tenants": OPS,
  "Query.completion": ADMIN_TENANT,
  "Query.completions": ADMIN_TENANT,
  "Query.usage": ALL,
  "Query.invoice": ALL,
  "Query.invoices": OPS,
  "Query.auditLog": ["ADMIN"],
  "Mutation.createTenant": ["ADMIN"],
  "Mutation.updateTenant": ["ADMIN"],
  "Mutation.setQuota": ["ADMIN"],
  "Mutation.grantTier": ["ADMIN"],
  "Mutation.revokeTier": ["ADMIN"],
  "Mutation.suspendTenant": ["ADMIN"],
  "Mutation.createApiKey": ADMIN_TENANT,
  "Mutation.revokeApiKey": ADMIN_TENANT,
  "Mutation.setPriceBook": OPS,
  "Mutation.createPrivateTier": ADMIN_TENANT,
  "Mutation.rotateTenantKey": ADMIN_TENANT,
  "Mutation.destroyTenantKeys": ADMIN_TENANT,
  "Mutation.createCompletion": ["TENANT"],
  "Mutation.cancelCompletion": ADMIN_TENANT,
  "Subscription.completionTokens": ADMIN_TENANT,
  "Subscription.tenantMetrics": ADMIN_TENANT,
};
