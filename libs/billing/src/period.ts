import { badInput, err, ok, type DomainError, type Result } from "@lite/core";
import { DEFAULT_PRICE_BOOK } from "./price-book";

/**
 * Billing periods: calendar months in UTC, written `YYYY-MM`, covering [start, end).
 * The earliest is the month the default price book takes effect (MIN_PERIOD, 2020-01: no
 * usage can be rated before a book is in force); the latest is the month in progress (a
 * future month has no usage).
 */
const PERIOD = /^(\d{4})-(0[1-9]|1[0-2])$/;

/** Months since year 0: periods compare and step as integers. */
function monthIndex(period: string): number {
  const [y, m] = period.split("-").map(Number);
  return y * 12 + (m - 1);
}

function periodOfIndex(index: number): string {
  const y = Math.floor(index / 12);
  const m = (index % 12) + 1;
  return `${String(y).padStart(4, "0")}-${String(m).padStart(2, "0")}`;
}

/** The period an instant falls in (UTC). */
export function periodOf(at: Date): string {
  return periodOfIndex(at.getUTCFullYear() * 12 + at.getUTCMonth());
}

/** The earliest period: the month the default price book takes effect. */
export const MIN_PERIOD = periodOf(DEFAULT_PRICE_BOOK.effectiveFrom);

export function periodStart(period: string): Date {
  const i = monthIndex(period);
  return new Date(Date.UTC(Math.floor(i / 12), i % 12, 1));
}

/** The first instant after the period (the next period's start). */
export function periodEnd(period: string): Date {
  return periodStart(nextPeriod(period));
}

export function nextPeriod(period: string): string {
  return periodOfIndex(monthIndex(period) + 1);
}

export function previousPeriod(period: string): string {
  return periodOfIndex(monthIndex(period) - 1);
}

/** Negative, zero or positive as a is before, equal to or after b. */
export function comparePeriods(a: string, b: string): number {
  return monthIndex(a) - monthIndex(b);
}

/** A period has closed once its last instant has passed: only then can it be issued. */
export function isClosed(period: string, now: Date): boolean {
  return now.getTime() >= periodEnd(period).getTime();
}

/**
 * BAD_USER_INPUT (field `period`) unless `period` is `YYYY-MM` from MIN_PERIOD to the
 * month in progress at `now`.
 */
export function checkPeriod(period: string, now: Date): Result<string, DomainError> {
  if (!PERIOD.test(period)) return err(badInput("period", "must be YYYY-MM"));
  if (comparePeriods(period, MIN_PERIOD) < 0) return err(badInput("period", `must be ${MIN_PERIOD} or later`));
  const current = periodOf(now);
  if (comparePeriods(period, current) > 0)
    return err(badInput("period", `must not be after the month in progress (${current})`));
  return ok(period);
}
