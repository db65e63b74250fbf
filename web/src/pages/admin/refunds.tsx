import { Button, Group, Text, Textarea } from "@mantine/core";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { money } from "../../format";
import { ConfirmModal } from "./shared";

export type RefundRequest = components["schemas"]["RefundRequest"];

/** Approve (the money goes back through Stripe) or reject with a reason: each asks first. */
export function RefundActions({ request, who, onDone }: { request: RefundRequest; who: string; onDone: (message: string) => void }) {
  const queryClient = useQueryClient();
  const [asking, setAsking] = useState<"approve" | "reject" | null>(null);
  const [note, setNote] = useState("");
  const [reason, setReason] = useState("");
  const [reasonShown, setReasonShown] = useState(false);
  const amount = money(request.amount_cents, request.currency);
  const settle = (message: string) => {
    setAsking(null);
    void queryClient.invalidateQueries({ queryKey: ["admin-refunds"] });
    void queryClient.invalidateQueries({ queryKey: ["admin-user"] });
    void queryClient.invalidateQueries({ queryKey: ["admin-payments"] });
    onDone(message);
  };
  const approve = useMutation({
    mutationFn: () =>
      unwrap(api.POST("/api/admin/refund-requests/{id}/approve/", { params: { path: { id: request.id } }, body: { note: note.trim() || null } })),
    onSuccess: () => settle(`Refund of ${amount} to ${who} approved. Stripe is refunding it; the payment shows Refunded once Stripe confirms, and the tools are then taken back.`),
  });
  const reject = useMutation({
    mutationFn: () => unwrap(api.POST("/api/admin/refund-requests/{id}/reject/", { params: { path: { id: request.id } }, body: { reason: reason.trim() } })),
    onSuccess: () => settle(`Refund request of ${who} rejected. They are emailed the reason.`),
  });
  if (request.status !== "PENDING") return null;
  const reasonMissing = !reason.trim();
  return (
    <>
      <Group gap="xs" wrap="nowrap">
        <Button size="xs" color="grape" onClick={() => setAsking("approve")} aria-label={`Approve the refund of ${amount} to ${who}`}>
          Approve…
        </Button>
        <Button size="xs" variant="default" onClick={() => setAsking("reject")} aria-label={`Reject the refund request of ${who}`}>
          Reject…
        </Button>
      </Group>
      <ConfirmModal
        opened={asking === "approve"}
        onClose={() => setAsking(null)}
        title="Approve this refund?"
        confirmLabel={`Refund ${amount}`}
        color="grape"
        onConfirm={() => approve.mutate()}
        pending={approve.isPending}
        error={approve.error}
      >
        <Text size="sm">
          {amount} goes back to {who} through Stripe. When Stripe confirms, their {request.track} enrollment ends and their tools are taken
          back. This cannot be undone.
        </Text>
        {request.reason ? (
          <Text size="sm" c="dimmed">
            Their reason: “{request.reason}”
          </Text>
        ) : null}
        <Textarea label="Note (optional, kept with the decision)" value={note} onChange={(e) => setNote(e.currentTarget.value)} maxLength={2000} minRows={2} />
      </ConfirmModal>
      <ConfirmModal
        opened={asking === "reject"}
        onClose={() => setAsking(null)}
        title="Reject this refund request?"
        confirmLabel="Reject the request"
        color="red"
        onConfirm={() => {
          setReasonShown(true);
          if (!reasonMissing) reject.mutate();
        }}
        pending={reject.isPending}
        error={reject.error}
      >
        <Text size="sm">
          {who} keeps their enrollment and is not refunded. They are emailed the reason you give.
        </Text>
        <Textarea
          label="Reason (the student reads it)"
          withAsterisk
          aria-required
          value={reason}
          onChange={(e) => setReason(e.currentTarget.value)}
          onBlur={() => setReasonShown(true)}
          error={reasonShown && reasonMissing ? "Give the reason for the student." : undefined}
          maxLength={2000}
          minRows={3}
        />
      </ConfirmModal>
    </>
  );
}
