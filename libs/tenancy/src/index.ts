/**
 * @lite/tenancy — tenants, their quotas (one DEFAULT_QUOTA), tier grants and the catalog
 * they make visible, and API keys. Services take TenancyResources and plain inputs and
 * return a Result for every expected refusal; the app checks roles and maps results.
 */
export { DEFAULT_QUOTA, effectiveQuota, validateQuota, type Quota, type QuotaInput, type QuotaPatch } from "./quota";
export {
  hiddenNotFound,
  hiddenOf,
  scopeOf,
  type HiddenObject,
  type KeyCacheInvalidation,
  type TenancyDb,
  type TenancyResources,
  type TenancyScheduler,
} from "./tenancy.resources";
export {
  NAME_MAX,
  WEIGHT_MAX,
  WEIGHT_MIN,
  createTenant,
  findTenant,
  listTenants,
  suspendTenant,
  updateTenant,
  type CreateTenantInput,
  type UpdateTenantInput,
} from "./tenant.service";
export { setQuota, tenantQuota } from "./quota.service";
export {
  grantedTiers,
  initialTierIds,
  listModels,
  listVisibleTiers,
  setTierGrant,
  visibleTiersWhere,
} from "./grant.service";
export { createApiKey, listApiKeys, revokeApiKey, type CreateApiKeyInput } from "./api-key.service";
export { createPrivateTier, type PrivateTierInput } from "./private-tier.service";
