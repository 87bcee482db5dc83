import { createHmac } from "node:crypto";

/**
 * A completion's routing and sampling seed: HMAC-SHA256 keyed per tenant
 * (key "lite-llm/seed/v1:" + tenantId, message = the client's seed), first 8 bytes
 * big-endian. Without the tenant id in the key, one tenant could replay another's routing
 * by sending the same seed.
 */
export function deriveRoutingSeed(tenantId: string, seed: string): bigint {
  const mac = createHmac("sha256", `lite-llm/seed/v1:${tenantId}`).update(seed, "utf8").digest();
  return mac.readBigUInt64BE(0);
}
