// The admin overview's charts: the stats series (GET /api/admin/stats/?from&to&bucket) shaped into
// one row per bucket, with every bucket present (the API leaves empty buckets out).
import type { components } from "../../api/schema";

export type Series = components["schemas"]["AdminStatsSeries"];
export type Bucket = Series["bucket"];
export type Row = { bucket: string; label: string } & Record<string, number | string | null>;

const DAY_MS = 86_400_000;

/** "2026-12-07" → "7 Dec" (by day) or "w/c 7 Dec" (by week: weeks start on Monday). */
export function bucketLabel(bucket: string, size: Bucket): string {
  const [y, m, d] = bucket.split("-").map(Number) as [number, number, number];
  const text = new Intl.DateTimeFormat("en-GB", { day: "numeric", month: "short", timeZone: "UTC" }).format(
    new Date(Date.UTC(y, m - 1, d)),
  );
  return size === "week" ? `w/c ${text}` : text;
}

/** YYYY-MM-DD of a date, in UTC (the API's days are UTC days). */
export function isoDay(at: Date): string {
  return at.toISOString().slice(0, 10);
}

/** The default range: the last 30 days by day, the last 26 weeks by week, up to today. */
export function defaultRange(today: Date, size: Bucket): { from: string; to: string } {
  const days = size === "week" ? 26 * 7 : 30;
  return { from: isoDay(new Date(today.getTime() - (days - 1) * DAY_MS)), to: isoDay(today) };
}

/** What the API allows: from on or before to, at most 366 days by day and 1113 by week. */
export function rangeProblem(from: string, to: string, size: Bucket): string | null {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(from) || !/^\d{4}-\d{2}-\d{2}$/.test(to)) return "Choose both dates.";
  const days = (Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / DAY_MS + 1;
  if (days < 1) return "The first day must be on or before the last day.";
  const most = size === "week" ? 1113 : 366;
  if (days > most) return `At most ${most} days by ${size}: choose a shorter range${size === "day" ? " or group by week" : ""}.`;
  return null;
}

function emptyRows(series: Pick<Series, "buckets" | "bucket">, keys: string[], fill: number | null = 0): Map<string, Row> {
  const rows = new Map<string, Row>();
  for (const bucket of series.buckets) {
    const row: Row = { bucket, label: bucketLabel(bucket, series.bucket) };
    for (const key of keys) row[key] = fill;
    rows.set(bucket, row);
  }
  return rows;
}

function add(row: Row | undefined, key: string, value: number): void {
  if (!row) return;
  row[key] = ((row[key] as number | null) ?? 0) + value;
}

/** Revenue net of refunds per track, in the currency's major unit. A track paid in two currencies
 * gets a line per currency ("DP (EUR)"); the usual single currency keeps the plain track name. */
export function revenueByTrack(series: Series): { rows: Row[]; keys: string[]; currency: string | null } {
  const currencies = new Set(series.revenue.map((p) => p.currency.toUpperCase()));
  const several = currencies.size > 1;
  const key = (p: Series["revenue"][number]) => (several ? `${p.track} (${p.currency.toUpperCase()})` : p.track);
  const keys = [...new Set(series.revenue.map(key))].sort();
  const rows = emptyRows(series, keys);
  for (const point of series.revenue) add(rows.get(point.bucket), key(point), (point.gross_cents - point.refunded_cents) / 100);
  return { rows: [...rows.values()], keys, currency: several ? null : ([...currencies][0] ?? null) };
}

/** New enrollments per track. */
export function enrollmentsByTrack(series: Series): { rows: Row[]; keys: string[] } {
  const keys = [...new Set(series.enrollments.map((p) => p.track))].sort();
  const rows = emptyRows(series, keys);
  for (const point of series.enrollments) add(rows.get(point.bucket), point.track, point.enrollments);
  return { rows: [...rows.values()], keys };
}

const OUTCOMES = ["SUCCEEDED", "FAILED", "IN_PROGRESS", "DEPROVISIONED"] as const;

/** Tools by the state they reached in each bucket (all tools together), the usual states first. */
export function provisioningOutcomes(series: Series): { rows: Row[]; keys: string[] } {
  const seen = new Set(series.provisioning.map((p) => p.status.toUpperCase()));
  const keys = [...OUTCOMES.filter((s) => seen.has(s)), ...[...seen].filter((s) => !(OUTCOMES as readonly string[]).includes(s)).sort()];
  const rows = emptyRows(series, keys);
  for (const point of series.provisioning) add(rows.get(point.bucket), point.status.toUpperCase(), point.count);
  return { rows: [...rows.values()], keys };
}

const hours = (seconds: number | null | undefined) => (seconds == null ? null : Math.round((seconds / 3600) * 10) / 10);

/** Hours: the median wait of the submissions that came in, and the median and p90 turnaround of
 * the reviews decided, in each bucket (no data: a gap, not zero). */
export function reviewTimes(series: Series): { rows: Row[]; keys: string[] } {
  const keys = ["Median wait", "Median turnaround", "90% decided within"];
  const rows = emptyRows(series, keys, null);
  for (const point of series.waiting) {
    const row = rows.get(point.bucket);
    if (row) row["Median wait"] = hours(point.median_wait_seconds);
  }
  for (const point of series.reviews) {
    const row = rows.get(point.bucket);
    if (!row) continue;
    row["Median turnaround"] = hours(point.median_turnaround_seconds);
    row["90% decided within"] = hours(point.p90_turnaround_seconds);
  }
  return { rows: [...rows.values()], keys };
}

/** Refund requests by outcome, in each bucket they were asked in (all currencies together). */
export function refundOutcomes(series: Series): { rows: Row[]; keys: string[] } {
  const keys = ["Approved", "Rejected", "Pending", "Failed"];
  const rows = emptyRows(series, keys);
  for (const point of series.refunds) {
    const row = rows.get(point.bucket);
    add(row, "Approved", point.approved);
    add(row, "Rejected", point.rejected);
    add(row, "Pending", point.pending);
    add(row, "Failed", point.failed);
  }
  return { rows: [...rows.values()], keys };
}

/** The range's headline numbers, for the cards above the charts. */
export function totals(series: Series) {
  const net = new Map<string, number>();
  for (const p of series.revenue) net.set(p.currency.toUpperCase(), (net.get(p.currency.toUpperCase()) ?? 0) + p.gross_cents - p.refunded_cents);
  const ready = series.provisioning.filter((p) => p.status.toUpperCase() === "SUCCEEDED").reduce((s, p) => s + p.count, 0);
  const failed = series.provisioning.filter((p) => p.status.toUpperCase() === "FAILED").reduce((s, p) => s + p.count, 0);
  return {
    netCents: [...net.entries()].map(([currency, cents]) => ({ currency, cents })),
    enrollments: series.enrollments.reduce((s, p) => s + p.enrollments, 0),
    toolsReady: ready,
    toolsFailed: failed,
    refundsRequested: series.refunds.reduce((s, p) => s + p.requested, 0),
    refundsApproved: series.refunds.reduce((s, p) => s + p.approved, 0),
    submissions: series.waiting.reduce((s, p) => s + p.submitted, 0),
  };
}

/** 3600 → "1 h", 5400 → "1.5 h", 90 → "2 min", null → "—". */
export function duration(seconds: number | null | undefined): string {
  if (seconds == null) return "—";
  if (seconds < 3600) return `${Math.max(1, Math.round(seconds / 60))} min`;
  if (seconds < 2 * 86_400) return `${Math.round((seconds / 3600) * 10) / 10} h`;
  return `${Math.round((seconds / 86_400) * 10) / 10} days`;
}
