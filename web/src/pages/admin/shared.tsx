import { Alert, Badge, Button, Group, Modal, Stack, Text } from "@mantine/core";
import { useInfiniteQuery } from "@tanstack/react-query";
import type { ReactNode } from "react";
import { ErrorAlert } from "../../components/ErrorAlert";

// Words for the statuses the admin pages show, by what they are the status of (a tool that
// SUCCEEDED is ready; a payment that SUCCEEDED is paid).
const WORDS: Record<string, Record<string, [string, string]>> = {
  payment: {
    PENDING: ["Pending", "yellow"],
    SUCCEEDED: ["Paid", "green"],
    FAILED: ["Failed", "red"],
    EXPIRED: ["Expired", "gray"],
    REFUNDED: ["Refunded", "grape"],
    PARTIALLY_REFUNDED: ["Partly refunded", "grape"],
    DISPUTED: ["Disputed", "red"],
  },
  refund: {
    PENDING: ["Waiting for a decision", "yellow"],
    APPROVED: ["Approved", "green"],
    REJECTED: ["Rejected", "red"],
    FAILED: ["Refund failed", "red"],
  },
  tool: {
    NOT_STARTED: ["Not started", "gray"],
    IN_PROGRESS: ["Setting up", "blue"],
    SUCCEEDED: ["Ready", "green"],
    FAILED: ["Failed", "red"],
    DEPROVISIONING: ["Being taken back", "orange"],
    DEPROVISIONED: ["Deprovisioned", "gray"],
    NOT_CONFIGURED: ["Not configured here", "gray"],
  },
  enrollment: {
    PENDING_PAYMENT: ["Not paid", "gray"],
    ENROLLED: ["Enrolled", "green"],
    COMPLETED: ["Completed", "teal"],
    REFUNDED: ["Refunded", "grape"],
    SUSPENDED: ["Suspended", "red"],
  },
  submission: {
    PENDING: ["Waiting for review", "yellow"],
    APPROVED: ["Approved", "green"],
    CHANGES_REQUESTED: ["Changes requested", "orange"],
    SUPERSEDED: ["Replaced", "gray"],
  },
};

export type StatusKind = keyof typeof WORDS;

export function statusWords(kind: StatusKind, status: string): string {
  return WORDS[kind]?.[status]?.[0] ?? status.toLowerCase().replaceAll("_", " ");
}

export function Status({ kind, status }: { kind: StatusKind; status: string }) {
  const color = WORDS[kind]?.[status]?.[1] ?? "gray";
  return (
    // Dark text on the tinted background: the light variant's coloured text is below AA contrast.
    <Badge color={color} variant="light" c="dark.8" style={{ whiteSpace: "nowrap" }}>
      {statusWords(kind, status)}
    </Badge>
  );
}

export const options = (kind: StatusKind) => Object.entries(WORDS[kind]!).map(([value, [label]]) => ({ value, label }));

/** "" → undefined: an empty filter is no filter. */
export const orNone = (value: string | null | undefined): string | undefined => (value ? value : undefined);

interface PageOf<T> {
  items: T[];
  next_cursor?: string | null;
}

/** A cursor-paged list: the pages so far, and whether there is more. */
export function usePaged<T>(key: unknown[], fetchPage: (cursor: string | undefined) => Promise<PageOf<T>>) {
  const query = useInfiniteQuery({
    queryKey: key,
    queryFn: ({ pageParam }) => fetchPage(pageParam),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const items = query.data?.pages.flatMap((p) => p.items) ?? [];
  return { ...query, items };
}

export function MoreButton({ query }: { query: { hasNextPage: boolean; isFetchingNextPage: boolean; fetchNextPage: () => unknown } }) {
  if (!query.hasNextPage) return null;
  return (
    <Group justify="center">
      <Button variant="default" loading={query.isFetchingNextPage} onClick={() => void query.fetchNextPage()}>
        Show more
      </Button>
    </Group>
  );
}

/** The confirmation every destructive or money-moving action asks for: what will happen, in
 * words, and the action's own name on the button. Errors are shown in the dialog. */
export function ConfirmModal({
  opened,
  onClose,
  title,
  children,
  confirmLabel,
  onConfirm,
  pending,
  error,
  color = "indigo",
  confirmDisabled = false,
}: {
  opened: boolean;
  onClose: () => void;
  title: string;
  children: ReactNode;
  confirmLabel: string;
  onConfirm: () => void;
  pending: boolean;
  error: unknown;
  color?: string;
  confirmDisabled?: boolean;
}) {
  return (
    <Modal opened={opened} onClose={onClose} title={title} centered>
      <Stack
        component="form"
        onSubmit={(e) => {
          e.preventDefault();
          if (!confirmDisabled) onConfirm();
        }}
      >
        {children}
        <ErrorAlert error={error} />
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            Cancel
          </Button>
          <Button type="submit" color={color} loading={pending} disabled={confirmDisabled}>
            {confirmLabel}
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}

/** The outcome of an action, said where it was taken. */
export function Outcome({ message, onClose }: { message: string | null; onClose?: () => void }) {
  if (!message) return null;
  return (
    <Alert color="green" variant="light" title="Done" role="status" withCloseButton={Boolean(onClose)} onClose={onClose} closeButtonLabel="Dismiss">
      <Text size="sm">{message}</Text>
    </Alert>
  );
}
