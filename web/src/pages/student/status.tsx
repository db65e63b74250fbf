import { Badge } from "@mantine/core";

const WORDS: Record<string, [string, string]> = {
  locked: ["Locked", "gray"],
  unlocked: ["Ready to start", "blue"],
  in_progress: ["In progress", "indigo"],
  submitted: ["Submitted", "yellow"],
  changes_requested: ["Changes requested", "orange"],
  approved: ["Approved", "green"],
  PENDING: ["Waiting for review", "yellow"],
  APPROVED: ["Approved", "green"],
  CHANGES_REQUESTED: ["Changes requested", "orange"],
  SUPERSEDED: ["Replaced", "gray"],
  SUCCEEDED: ["Paid", "green"],
  FAILED: ["Failed", "red"],
  EXPIRED: ["Expired", "gray"],
  REFUNDED: ["Refunded", "gray"],
  PARTIALLY_REFUNDED: ["Partly refunded", "gray"],
  DISPUTED: ["Disputed", "red"],
  READY: ["Ready", "green"],
  REJECTED: ["Refused", "red"],
};

export function StatusBadge({ status }: { status: string }) {
  const [label, color] = WORDS[status] ?? [status.toLowerCase().replaceAll("_", " "), "gray"];
  return (
    // Dark text on the tinted background: the light variant's coloured text is below AA contrast.
    <Badge color={color} variant="light" c="dark.8">
      {label}
    </Badge>
  );
}
