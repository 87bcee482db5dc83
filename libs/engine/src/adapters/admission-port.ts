import type { Admission } from "@lite/scheduler";
import type { AdmissionPort } from "../ports";

/**
 * libs/scheduler Admission as the engine's AdmissionPort. Admission.progress counts a
 * running total; calling it every token would cost two Lua calls per token, so it is sent
 * every `everyTokens` tokens (default 16; outstanding tokens lag by at most that many;
 * settle releases the rest exactly).
 */
export function admissionPort(admission: Pick<Admission, "progress" | "settle">, everyTokens = 16): AdmissionPort {
  return {
    async progress(items) {
      await Promise.all(
        items
          .filter((i) => i.generatedTokens % everyTokens === 0)
          .map((i) => admission.progress(i.tenantId, i.completionId, i.generatedTokens)),
      );
    },
    settle: (tenantId, completionId, generatedTokens) => admission.settle(tenantId, completionId, generatedTokens),
  };
}
