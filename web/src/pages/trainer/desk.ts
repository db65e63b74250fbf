// The trainer desk's plain logic: how long something has waited, in words; the queue's filters
// read from and written to the URL (so a filtered queue is a link); what a file or a repository
// link opens as.

export const STATUSES = ["PENDING", "CHANGES_REQUESTED", "APPROVED", "SUPERSEDED"] as const;
export type QueueStatus = (typeof STATUSES)[number];
export const TRACKS = ["DP", "FSD"] as const;
export type TrackCode = (typeof TRACKS)[number];

export const STATUS_WORDS: Record<QueueStatus, string> = {
  PENDING: "Waiting for review",
  CHANGES_REQUESTED: "Changes requested",
  APPROVED: "Approved",
  SUPERSEDED: "Replaced by a newer attempt",
};

const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? "" : "s"}`;

/** A duration in words, to the two largest units that matter: "under a minute", "5 minutes",
 * "1 hour 20 minutes", "3 days 4 hours", "2 weeks 1 day". */
export function waitedWords(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return "under a minute";
  const minutes = Math.floor(s / 60);
  if (minutes < 60) return plural(minutes, "minute");
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return minutes % 60 ? `${plural(hours, "hour")} ${plural(minutes % 60, "minute")}` : plural(hours, "hour");
  const days = Math.floor(hours / 24);
  if (days < 14) return hours % 24 ? `${plural(days, "day")} ${plural(hours % 24, "hour")}` : plural(days, "day");
  const weeks = Math.floor(days / 7);
  return days % 7 ? `${plural(weeks, "week")} ${plural(days % 7, "day")}` : plural(weeks, "week");
}

/** How urgent a wait looks: a day or more is late, two or more very late. */
export function waitedTone(seconds: number): "gray" | "orange" | "red" {
  if (seconds >= 2 * 86_400) return "red";
  if (seconds >= 86_400) return "orange";
  return "gray";
}

/** The time since ``iso`` in words ("3 hours ago"), or "never". */
export function ago(iso: string | null | undefined, now: number = Date.now()): string {
  if (!iso) return "never";
  const seconds = (now - new Date(iso).getTime()) / 1000;
  return seconds < 60 ? "just now" : `${waitedWords(seconds)} ago`;
}

export interface QueueFilters {
  status: QueueStatus;
  track: TrackCode | null;
  project: string | null;
}

/** The queue's filters from the URL; a value the API would refuse is ignored (the default kept). */
export function readFilters(params: URLSearchParams): QueueFilters {
  const status = params.get("status");
  const track = params.get("track");
  const project = params.get("project");
  return {
    status: (STATUSES as readonly string[]).includes(status ?? "") ? (status as QueueStatus) : "PENDING",
    track: (TRACKS as readonly string[]).includes(track ?? "") ? (track as TrackCode) : null,
    project: project && /^[1-9][0-9]{0,8}$/.test(project) ? project : null,
  };
}

/** The URL's search for these filters: defaults left out, so the plain queue is plain /trainer. */
export function writeFilters(filters: QueueFilters): URLSearchParams {
  const params = new URLSearchParams();
  if (filters.track) params.set("track", filters.track);
  if (filters.project) params.set("project", filters.project);
  if (filters.status !== "PENDING") params.set("status", filters.status);
  return params;
}

/** What the review page does with a file: shows a PDF or an image inline, offers the rest. */
export function fileKind(contentType: string | null | undefined): "pdf" | "image" | "other" {
  if (contentType === "application/pdf") return "pdf";
  if (contentType && /^image\/(png|jpeg|gif|webp)$/.test(contentType)) return "image";
  return "other";
}

/** The repository at the pinned commit, where the host has a page for it (GitHub, GitLab,
 * Bitbucket); null otherwise (the commit is shown as text). */
export function commitUrl(repository: string | null | undefined, sha: string | null | undefined): string | null {
  if (!repository || !sha || !/^[0-9a-f]{7,40}$/i.test(sha)) return null;
  let url: URL;
  try {
    url = new URL(repository);
  } catch {
    return null;
  }
  if (url.protocol !== "https:") return null;
  const path = url.pathname.replace(/\/+$/, "").replace(/\.git$/, "");
  if (!/^\/[^/]+\/[^/]+/.test(path)) return null;
  const base = `${url.origin}${path}`;
  if (url.hostname === "github.com") return `${base}/tree/${sha}`;
  if (url.hostname === "gitlab.com") return `${base}/-/tree/${sha}`;
  if (url.hostname === "bitbucket.org") return `${base}/src/${sha}`;
  return null;
}
