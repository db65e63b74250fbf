// Small rules of the admin forms, kept apart so they are unit-tested.

/** The version after ``latest``: its last number plus one ("1.1" → "1.2", "2" → "3"). */
export function nextVersion(latest: string): string {
  const parts = latest.split(".");
  const last = Number(parts[parts.length - 1]);
  if (!Number.isInteger(last)) return "";
  parts[parts.length - 1] = String(last + 1);
  return parts.join(".");
}

/** A Date as the value of an <input type="datetime-local"> (local time, to the minute). */
export function localInputValue(at: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}T${pad(at.getHours())}:${pad(at.getMinutes())}`;
}

/** What is wrong with a retention period, in words, or null. */
export function retentionProblem(days: number, legalMinimum: number | null | undefined): string | null {
  if (!Number.isInteger(days) || days < 1) return "Enter a whole number of days.";
  if (days > 36_500) return "At most 36500 days (100 years).";
  if (legalMinimum != null && days < legalMinimum) return `The law requires at least ${legalMinimum} days.`;
  return null;
}
