import { describe, expect, it } from "vitest";
import { localInputValue, nextVersion, retentionProblem } from "./forms";

describe("admin form rules", () => {
  it("suggests the next version after the latest", () => {
    expect(nextVersion("1.1")).toBe("1.2");
    expect(nextVersion("2")).toBe("3");
    expect(nextVersion("1.9")).toBe("1.10");
    expect(nextVersion("draft")).toBe("");
  });

  it("writes a datetime-local value to the minute", () => {
    expect(localInputValue(new Date(2026, 11, 7, 9, 5, 59))).toBe("2026-12-07T09:05");
  });

  it("refuses a retention period under its legal minimum, in words", () => {
    expect(retentionProblem(3650, 2555)).toBeNull();
    expect(retentionProblem(30, 2555)).toBe("The law requires at least 2555 days.");
    expect(retentionProblem(0, null)).toBe("Enter a whole number of days.");
    expect(retentionProblem(1.5, null)).toBe("Enter a whole number of days.");
    expect(retentionProblem(40_000, null)).toMatch(/At most/);
  });
});
