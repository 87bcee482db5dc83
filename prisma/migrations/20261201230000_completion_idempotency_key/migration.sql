-- CreateTable
CREATE TABLE "CompletionIdempotencyKey" (
    "tenantId" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "completionId" TEXT NOT NULL,
    "requestHash" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "CompletionIdempotencyKey_pkey" PRIMARY KEY ("tenantId","key")
);

-- CreateIndex
CREATE UNIQUE INDEX "CompletionIdempotencyKey_completionId_key" ON "CompletionIdempotencyKey"("completionId");

-- AddForeignKey
ALTER TABLE "CompletionIdempotencyKey" ADD CONSTRAINT "CompletionIdempotencyKey_completionId_fkey" FOREIGN KEY ("completionId") REFERENCES "Completion"("id") ON DELETE CASCADE ON UPDATE CASCADE;
