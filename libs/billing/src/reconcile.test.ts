import { checkCompletion, formatReconcileReport, type CompletionRow } from "./reconcile";

const row = (over: Partial<CompletionRow> = {}): CompletionRow => ({
  completionId: "cmp_1",
  tenantId: "ten_a",
  status: "COMPLETED",
  outputTokens: 12,
  promptTokens: 5,
  events: 4,
  outputBilled: "12",
  inputBilled: "5",
  eventTenants: "ten_a",
  ...over,
});
const kinds = (r: CompletionRow, streamed: number | null) => checkCompletion(r, streamed).map((m) => m.kind);

describe("checkCompletion", () => {
  it("passes when billed tokens equal the stream's (or, once it expired, the row's)", () => {
    expect(kinds(row(), 12)).toEqual([]);
    expect(kinds(row(), null)).toEqual([]);
  });

  it("compares against the stream while it is retained, the row otherwise", () => {
    expect(checkCompletion(row({ outputBilled: "13" }), 12)[0].detail).toBe("OUTPUT_TOKENS billed 13, stream holds 12");
    expect(checkCompletion(row({ outputBilled: "11" }), null)[0].detail).toBe("OUTPUT_TOKENS billed 11, row has 12");
    expect(kinds(row(), 13)).toEqual(["STREAM_ROW_MISMATCH", "OUTPUT_TOKENS"]);
  });

  it("flags input tokens, usage under another tenant, and tokens never billed; a failed job with no tokens is fine unbilled", () => {
    expect(kinds(row({ inputBilled: "6" }), null)).toEqual(["INPUT_TOKENS"]);
    expect(kinds(row({ eventTenants: "ten_a,ten_b" }), null)).toEqual(["TENANT_MISMATCH"]);
    const unbilled = { events: 0, outputBilled: "0", inputBilled: "0", eventTenants: null };
    expect(kinds(row(unbilled), null)).toEqual(["UNBILLED"]);
    expect(kinds(row({ ...unbilled, status: "FAILED", outputTokens: 0 }), null)).toEqual([]);
    expect(kinds(row({ ...unbilled, status: "FAILED", outputTokens: 0 }), 3)).toEqual([
      "STREAM_ROW_MISMATCH",
      "UNBILLED",
    ]);
  });
});

it("formats one line per mismatch and a verdict", () => {
  const text = formatReconcileReport({
    period: "2026-11",
    completionsChecked: 2,
    usageEvents: 9,
    inFlight: 1,
    mismatches: [
      {
        kind: "UNBILLED",
        completionId: "cmp_1",
        tenantId: "ten_a",
        detail: "no usage events, row has 3 output tokens",
      },
    ],
  });
  expect(text).toBe(
    "reconcile 2026-11: 2 completions and 9 usage events checked, 1 still running (not checked)\n" +
      "MISMATCH UNBILLED completion cmp_1 (tenant ten_a): no usage events, row has 3 output tokens\n" +
      "reconcile 2026-11: FAILED, 1 mismatch(es)\n",
  );
});
