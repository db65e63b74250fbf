import { describe, expect, it } from "vitest";
import {
  bucketLabel,
  defaultRange,
  duration,
  enrollmentsByTrack,
  provisioningOutcomes,
  rangeProblem,
  refundOutcomes,
  revenueByTrack,
  reviewTimes,
  totals,
  type Series,
} from "./chartData";

function series(overrides: Partial<Series> = {}): Series {
  return {
    from: "2026-12-01",
    to: "2026-12-03",
    bucket: "day",
    buckets: ["2026-12-01", "2026-12-02", "2026-12-03"],
    revenue: [],
    enrollments: [],
    provisioning: [],
    reviews: [],
    waiting: [],
    refunds: [],
    ...overrides,
  };
}

describe("revenueByTrack", () => {
  it("fills the buckets the API leaves out with zero and nets refunds, in major units", () => {
    const shaped = revenueByTrack(
      series({
        revenue: [
          { bucket: "2026-12-01", track: "FSD", currency: "usd", payments: 1, gross_cents: 79900, refunded_cents: 0 },
          { bucket: "2026-12-03", track: "DP", currency: "usd", payments: 2, gross_cents: 99800, refunded_cents: 49900 },
        ],
      }),
    );
    expect(shaped.keys).toEqual(["DP", "FSD"]);
    expect(shaped.currency).toBe("USD");
    expect(shaped.rows.map((r) => [r.bucket, r.DP, r.FSD])).toEqual([
      ["2026-12-01", 0, 799],
      ["2026-12-02", 0, 0],
      ["2026-12-03", 499, 0],
    ]);
  });

  it("keeps currencies apart instead of adding dollars to euros", () => {
    const shaped = revenueByTrack(
      series({
        revenue: [
          { bucket: "2026-12-01", track: "DP", currency: "usd", payments: 1, gross_cents: 100, refunded_cents: 0 },
          { bucket: "2026-12-01", track: "DP", currency: "eur", payments: 1, gross_cents: 200, refunded_cents: 0 },
        ],
      }),
    );
    expect(shaped.currency).toBeNull();
    expect(shaped.keys).toEqual(["DP (EUR)", "DP (USD)"]);
    expect(shaped.rows[0]).toMatchObject({ "DP (EUR)": 2, "DP (USD)": 1 });
  });
});

describe("the other series", () => {
  it("counts enrollments per track and ignores points outside the buckets", () => {
    const shaped = enrollmentsByTrack(
      series({
        enrollments: [
          { bucket: "2026-12-02", track: "DP", enrollments: 3 },
          { bucket: "2026-11-30", track: "DP", enrollments: 9 },
        ],
      }),
    );
    expect(shaped.rows.map((r) => r.DP)).toEqual([0, 3, 0]);
  });

  it("adds the tools together by outcome, the usual outcomes first", () => {
    const shaped = provisioningOutcomes(
      series({
        provisioning: [
          { bucket: "2026-12-01", tool: "JUPYTER", status: "SUCCEEDED", count: 2 },
          { bucket: "2026-12-01", tool: "PREFECT", status: "SUCCEEDED", count: 1 },
          { bucket: "2026-12-01", tool: "PREFECT", status: "NOT_CONFIGURED", count: 1 },
          { bucket: "2026-12-02", tool: "SUPERSET", status: "FAILED", count: 1 },
        ],
      }),
    );
    expect(shaped.keys).toEqual(["SUCCEEDED", "FAILED", "NOT_CONFIGURED"]);
    expect(shaped.rows[0]).toMatchObject({ SUCCEEDED: 3, FAILED: 0, NOT_CONFIGURED: 1 });
    expect(shaped.rows[1]).toMatchObject({ SUCCEEDED: 0, FAILED: 1 });
  });

  it("shows review times in hours and leaves a gap where nothing was decided", () => {
    const shaped = reviewTimes(
      series({
        waiting: [{ bucket: "2026-12-01", submitted: 2, pending: 1, median_wait_seconds: 5400, longest_pending_seconds: 9000 }],
        reviews: [
          { bucket: "2026-12-02", decided: 1, approved: 1, changes_requested: 0, median_turnaround_seconds: 7200, p90_turnaround_seconds: null },
        ],
      }),
    );
    expect(shaped.rows[0]).toMatchObject({ "Median wait": 1.5, "Median turnaround": null });
    expect(shaped.rows[1]).toMatchObject({ "Median wait": null, "Median turnaround": 2, "90% decided within": null });
    expect(shaped.rows[2]!["Median turnaround"]).toBeNull();
  });

  it("counts refunds by outcome across currencies", () => {
    const point = { bucket: "2026-12-03", requested: 2, approved: 1, rejected: 1, pending: 0, failed: 0, requested_cents: 0, approved_cents: 0 };
    const shaped = refundOutcomes(series({ refunds: [{ ...point, currency: "usd" }, { ...point, currency: "eur", pending: 1 }] }));
    expect(shaped.rows[2]).toMatchObject({ Approved: 2, Rejected: 2, Pending: 1, Failed: 0 });
    expect(totals(series({ refunds: [{ ...point, currency: "usd" }] }))).toMatchObject({ refundsRequested: 2, refundsApproved: 1 });
  });
});

describe("range and labels", () => {
  it("labels weeks by their Monday", () => {
    expect(bucketLabel("2026-12-07", "week")).toBe("w/c 7 Dec");
    expect(bucketLabel("2026-12-07", "day")).toBe("7 Dec");
  });

  it("defaults to 30 days by day and 26 weeks by week", () => {
    const today = new Date("2026-12-07T15:00:00Z");
    expect(defaultRange(today, "day")).toEqual({ from: "2026-11-08", to: "2026-12-07" });
    expect(defaultRange(today, "week").from).toBe("2026-06-09");
  });

  it("says what is wrong with a range before asking the API", () => {
    expect(rangeProblem("2026-12-07", "2026-12-01", "day")).toMatch(/on or before/);
    expect(rangeProblem("2025-01-01", "2026-12-01", "day")).toMatch(/At most 366 days/);
    expect(rangeProblem("2025-01-01", "2026-12-01", "week")).toBeNull();
    expect(rangeProblem("", "2026-12-01", "day")).toBe("Choose both dates.");
  });

  it("words durations", () => {
    expect(duration(null)).toBe("—");
    expect(duration(90)).toBe("2 min");
    expect(duration(5400)).toBe("1.5 h");
    expect(duration(3 * 86_400)).toBe("3 days");
  });
});
