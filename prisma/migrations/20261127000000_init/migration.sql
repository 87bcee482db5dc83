-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateEnum
CREATE TYPE "Role" AS ENUM ('ADMIN', 'TENANT', 'FINANCE');

-- CreateEnum
CREATE TYPE "Placement" AS ENUM ('HOT', 'WARM', 'COLD', 'ARCHIVE');

-- CreateEnum
CREATE TYPE "TierMode" AS ENUM ('FAST', 'BALANCED', 'DEEP', 'MAX');

-- CreateEnum
CREATE TYPE "OverQuotaPolicy" AS ENUM ('REJECT', 'DEGRADE');

-- CreateEnum
CREATE TYPE "CompletionStatus" AS ENUM ('QUEUED', 'RUNNING', 'COMPLETED', 'CANCELLED', 'FAILED');

-- CreateEnum
CREATE TYPE "FinishReason" AS ENUM ('STOP', 'LENGTH', 'CANCELLED', 'ERROR');

-- CreateEnum
CREATE TYPE "Meter" AS ENUM ('INPUT_TOKENS', 'OUTPUT_TOKENS', 'EXPERT_CALLS', 'PREFETCH_BYTES', 'TIERSET_ACTIVATIONS', 'KV_BYTE_SECONDS');

-- CreateTable
CREATE TABLE "Tenant" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "weight" INTEGER NOT NULL DEFAULT 1,
    "suspended" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Tenant_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Quota" (
    "tenantId" TEXT NOT NULL,
    "hotMemoryBytes" BIGINT NOT NULL DEFAULT 268435456,
    "warmMemoryBytes" BIGINT NOT NULL DEFAULT 1073741824,
    "kvCacheBytes" BIGINT NOT NULL DEFAULT 67108864,
    "prefetchBytesPerSecond" BIGINT NOT NULL DEFAULT 268435456,
    "maxOutstandingTokens" INTEGER NOT NULL DEFAULT 65536,
    "maxConcurrentRequests" INTEGER NOT NULL DEFAULT 32,
    "requestsPerMinute" INTEGER NOT NULL DEFAULT 600,
    "tokensPerMinute" INTEGER NOT NULL DEFAULT 200000,
    "overQuotaPolicy" "OverQuotaPolicy" NOT NULL DEFAULT 'REJECT',
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Quota_pkey" PRIMARY KEY ("tenantId")
);

-- CreateTable
CREATE TABLE "ApiKey" (
    "id" TEXT NOT NULL,
    "hash" TEXT NOT NULL,
    "prefix" TEXT NOT NULL,
    "role" "Role" NOT NULL,
    "tenantId" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lastUsedAt" TIMESTAMP(3),
    "revokedAt" TIMESTAMP(3),

    CONSTRAINT "ApiKey_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Model" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "manifestSha256" TEXT NOT NULL,
    "isDefault" BOOLEAN NOT NULL DEFAULT false,
    "registeredAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Model_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Tier" (
    "id" TEXT NOT NULL,
    "modelId" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "rank" INTEGER NOT NULL,
    "placement" "Placement" NOT NULL,
    "groups" INTEGER NOT NULL,
    "expertsPerGroup" INTEGER NOT NULL,
    "paramBytes" BIGINT NOT NULL,
    "restricted" BOOLEAN NOT NULL DEFAULT false,
    "costWeight" DOUBLE PRECISION NOT NULL DEFAULT 1,
    "ownerTenantId" TEXT,
    "baseTierId" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Tier_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "TierGrant" (
    "tenantId" TEXT NOT NULL,
    "tierId" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "TierGrant_pkey" PRIMARY KEY ("tenantId","tierId")
);

-- CreateTable
CREATE TABLE "Completion" (
    "id" TEXT NOT NULL,
    "tenantId" TEXT NOT NULL,
    "modelId" TEXT NOT NULL,
    "apiKeyId" TEXT,
    "status" "CompletionStatus" NOT NULL DEFAULT 'QUEUED',
    "mode" "TierMode" NOT NULL,
    "tierSet" TEXT[],
    "degraded" BOOLEAN NOT NULL DEFAULT false,
    "seed" TEXT NOT NULL,
    "prompt" TEXT NOT NULL,
    "promptTokens" INTEGER NOT NULL,
    "maxTokens" INTEGER NOT NULL,
    "temperature" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "costWeight" DOUBLE PRECISION NOT NULL DEFAULT 1,
    "outputTokens" INTEGER NOT NULL DEFAULT 0,
    "text" TEXT NOT NULL DEFAULT '',
    "finishReason" "FinishReason",
    "error" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "startedAt" TIMESTAMP(3),
    "finishedAt" TIMESTAMP(3),

    CONSTRAINT "Completion_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "UsageEvent" (
    "id" TEXT NOT NULL,
    "idempotencyKey" TEXT NOT NULL,
    "tenantId" TEXT NOT NULL,
    "meter" "Meter" NOT NULL,
    "dimension" TEXT,
    "quantity" BIGINT NOT NULL,
    "completionId" TEXT,
    "occurredAt" TIMESTAMP(3) NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "UsageEvent_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "PriceBook" (
    "id" TEXT NOT NULL,
    "currency" TEXT NOT NULL,
    "effectiveFrom" TIMESTAMP(3) NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "PriceBook_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Price" (
    "id" TEXT NOT NULL,
    "priceBookId" TEXT NOT NULL,
    "meter" "Meter" NOT NULL,
    "dimension" TEXT,
    "unitPrice" DECIMAL(30,12) NOT NULL,
    "unit" TEXT NOT NULL,

    CONSTRAINT "Price_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "AuditLog" (
    "seq" BIGINT NOT NULL,
    "at" TIMESTAMP(3) NOT NULL,
    "tenantId" TEXT,
    "actor" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "resource" TEXT NOT NULL,
    "decision" TEXT NOT NULL,
    "reason" TEXT,
    "prevHash" TEXT NOT NULL,
    "hash" TEXT NOT NULL,

    CONSTRAINT "AuditLog_pkey" PRIMARY KEY ("seq")
);

-- CreateIndex
CREATE UNIQUE INDEX "Tenant_name_key" ON "Tenant"("name");

-- CreateIndex
CREATE UNIQUE INDEX "ApiKey_hash_key" ON "ApiKey"("hash");

-- CreateIndex
CREATE INDEX "ApiKey_tenantId_idx" ON "ApiKey"("tenantId");

-- CreateIndex
CREATE UNIQUE INDEX "Model_name_key" ON "Model"("name");

-- CreateIndex
CREATE INDEX "Tier_modelId_idx" ON "Tier"("modelId");

-- CreateIndex
CREATE INDEX "Tier_ownerTenantId_idx" ON "Tier"("ownerTenantId");

-- CreateIndex
CREATE INDEX "TierGrant_tierId_idx" ON "TierGrant"("tierId");

-- CreateIndex
CREATE INDEX "Completion_tenantId_id_idx" ON "Completion"("tenantId", "id");

-- CreateIndex
CREATE INDEX "Completion_tenantId_status_id_idx" ON "Completion"("tenantId", "status", "id");

-- CreateIndex
CREATE UNIQUE INDEX "UsageEvent_idempotencyKey_key" ON "UsageEvent"("idempotencyKey");

-- CreateIndex
CREATE INDEX "UsageEvent_tenantId_occurredAt_idx" ON "UsageEvent"("tenantId", "occurredAt");

-- CreateIndex
CREATE INDEX "UsageEvent_occurredAt_idx" ON "UsageEvent"("occurredAt");

-- CreateIndex
CREATE INDEX "PriceBook_effectiveFrom_idx" ON "PriceBook"("effectiveFrom");

-- CreateIndex
CREATE INDEX "Price_priceBookId_idx" ON "Price"("priceBookId");

-- CreateIndex
CREATE INDEX "AuditLog_tenantId_seq_idx" ON "AuditLog"("tenantId", "seq");

-- AddForeignKey
ALTER TABLE "Quota" ADD CONSTRAINT "Quota_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ApiKey" ADD CONSTRAINT "ApiKey_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Tier" ADD CONSTRAINT "Tier_modelId_fkey" FOREIGN KEY ("modelId") REFERENCES "Model"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Tier" ADD CONSTRAINT "Tier_ownerTenantId_fkey" FOREIGN KEY ("ownerTenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "TierGrant" ADD CONSTRAINT "TierGrant_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "TierGrant" ADD CONSTRAINT "TierGrant_tierId_fkey" FOREIGN KEY ("tierId") REFERENCES "Tier"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Completion" ADD CONSTRAINT "Completion_tenantId_fkey" FOREIGN KEY ("tenantId") REFERENCES "Tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Price" ADD CONSTRAINT "Price_priceBookId_fkey" FOREIGN KEY ("priceBookId") REFERENCES "PriceBook"("id") ON DELETE CASCADE ON UPDATE CASCADE;


-- The audit log is append-only: updates and deletes are silently dropped.
-- (Rules, not a plpgsql trigger: Prisma's migration runner splits scripts on semicolons.)
CREATE RULE "AuditLog_no_update" AS ON UPDATE TO "AuditLog" DO INSTEAD NOTHING;
CREATE RULE "AuditLog_no_delete" AS ON DELETE TO "AuditLog" DO INSTEAD NOTHING;
