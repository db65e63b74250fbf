import { describe, expect, it } from "vitest";
import { ago, commitUrl, fileKind, readFilters, waitedTone, waitedWords, writeFilters } from "./desk";

describe("waitedWords", () => {
  it.each([
    [0, "under a minute"],
    [59, "under a minute"],
    [60, "1 minute"],
    [5 * 60 + 30, "5 minutes"],
    [3600, "1 hour"],
    [3600 + 20 * 60, "1 hour 20 minutes"],
    [2 * 3600 + 60, "2 hours 1 minute"],
    [86_400, "1 day"],
    [3 * 86_400 + 4 * 3600 + 59, "3 days 4 hours"],
    [13 * 86_400, "13 days"],
    [14 * 86_400, "2 weeks"],
    [15 * 86_400 + 3600, "2 weeks 1 day"],
    [-5, "under a minute"],
  ])("%i s → %s", (seconds, words) => {
    expect(waitedWords(seconds)).toBe(words);
  });

  it("marks a day as late and two as very late", () => {
    expect([waitedTone(86_399), waitedTone(86_400), waitedTone(2 * 86_400)]).toEqual(["gray", "orange", "red"]);
  });

  it("says how long ago, or never", () => {
    const now = Date.parse("2026-03-10T12:00:00Z");
    expect(ago("2026-03-10T11:59:30Z", now)).toBe("just now");
    expect(ago("2026-03-09T09:00:00Z", now)).toBe("1 day 3 hours ago");
    expect(ago(null, now)).toBe("never");
  });
});

describe("queue filters in the URL", () => {
  it("reads what the API accepts and ignores the rest", () => {
    expect(readFilters(new URLSearchParams("track=DP&project=12&status=APPROVED"))).toEqual({
      status: "APPROVED",
      track: "DP",
      project: "12",
    });
    expect(readFilters(new URLSearchParams("track=XX&project=0&status=done"))).toEqual({ status: "PENDING", track: null, project: null });
    expect(readFilters(new URLSearchParams("project=1;drop"))).toEqual({ status: "PENDING", track: null, project: null });
  });

  it("writes only what differs from the plain queue, and reads back the same", () => {
    expect(writeFilters({ status: "PENDING", track: null, project: null }).toString()).toBe("");
    const filters = { status: "CHANGES_REQUESTED", track: "FSD", project: "7" } as const;
    const written = writeFilters(filters);
    expect(written.toString()).toBe("track=FSD&project=7&status=CHANGES_REQUESTED");
    expect(readFilters(written)).toEqual(filters);
  });
});

describe("files and repositories", () => {
  it("shows PDFs and raster images inline, nothing else", () => {
    expect(fileKind("application/pdf")).toBe("pdf");
    expect(fileKind("image/png")).toBe("image");
    expect(fileKind("image/svg+xml")).toBe("other");
    expect(fileKind("text/html")).toBe("other");
    expect(fileKind(null)).toBe("other");
  });

  it("links a repository at its pinned commit", () => {
    const sha = "0123456789abcdef0123456789abcdef01234567";
    expect(commitUrl("https://github.com/ada/shop.git", sha)).toBe(`https://github.com/ada/shop/tree/${sha}`);
    expect(commitUrl("https://github.com/ada/shop/", sha)).toBe(`https://github.com/ada/shop/tree/${sha}`);
    expect(commitUrl("https://gitlab.com/ada/shop", sha)).toBe(`https://gitlab.com/ada/shop/-/tree/${sha}`);
    expect(commitUrl("https://git.example.com/ada/shop", sha)).toBeNull();
    expect(commitUrl("javascript:alert(1)//github.com/a/b", sha)).toBeNull();
    expect(commitUrl("https://github.com/ada/shop", "not a sha")).toBeNull();
    expect(commitUrl("https://github.com/ada", sha)).toBeNull();
  });
});
