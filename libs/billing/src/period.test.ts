import {
  checkPeriod,
  comparePeriods,
  isClosed,
  MIN_PERIOD,
  nextPeriod,
  periodEnd,
  periodOf,
  periodStart,
  previousPeriod,
} from "./period";

const now = new Date("2026-12-02T01:00:00.000Z");
const message = (p: string) => {
  const r = checkPeriod(p, now);
  return r.ok ? "ok" : r.error.message;
};

describe("billing periods", () => {
  it("accept YYYY-MM from the earliest period to the month in progress, at both limits", () => {
    expect(MIN_PERIOD).toBe("2020-01");
    expect(message("2020-01")).toBe("ok");
    expect(message("2019-12")).toBe("period: must be 2020-01 or later");
    expect(message("2026-12")).toBe("ok");
    expect(message("2027-01")).toBe("period: must not be after the month in progress (2026-12)");
  });

  it("refuse anything but YYYY-MM", () => {
    for (const bad of [
      "2026-13",
      "2026-00",
      "2026-1",
      "26-01",
      "2026-01 ",
      " 2026-01",
      "2026-01\n",
      "2026/01",
      "",
      "2026-011",
    ])
      expect({ bad, message: message(bad) }).toEqual({ bad, message: "period: must be YYYY-MM" });
    const r = checkPeriod("x", now);
    expect(r.ok ? null : r.error).toMatchObject({ code: "BAD_USER_INPUT", field: "period" });
  });

  it("are UTC months [start, end), stepping across years", () => {
    expect(periodStart("2026-02").toISOString()).toBe("2026-02-01T00:00:00.000Z");
    expect(periodEnd("2026-02").toISOString()).toBe("2026-03-01T00:00:00.000Z");
    expect(periodEnd("2026-12").toISOString()).toBe("2027-01-01T00:00:00.000Z");
    expect(nextPeriod("2026-12")).toBe("2027-01");
    expect(previousPeriod("2027-01")).toBe("2026-12");
    expect(periodOf(new Date("2026-10-31T23:59:59.999Z"))).toBe("2026-10");
    expect(periodOf(new Date("2026-11-01T00:00:00.000Z"))).toBe("2026-11");
    expect(comparePeriods("2026-09", "2026-10")).toBeLessThan(0);
    expect(comparePeriods("2027-01", "2026-12")).toBeGreaterThan(0);
  });

  it("close at the period's end, not a millisecond before", () => {
    const end = periodEnd("2026-11").getTime();
    expect(isClosed("2026-11", new Date(end - 1))).toBe(false);
    expect(isClosed("2026-11", new Date(end))).toBe(true);
  });
});
