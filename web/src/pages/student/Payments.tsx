import { Alert, Button, Card, Group, Stack, Table, Text, Textarea, Title } from "@mantine/core";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api, unwrap } from "../../api/client";
import { ApiError } from "../../api/errors";
import { ErrorAlert } from "../../components/ErrorAlert";
import { Loading } from "../../components/Loading";
import { Page } from "../../components/Page";
import { date, money } from "../../format";
import { StatusBadge } from "./status";

const REFUND_RULE =
  "A refund can be asked for within 14 days of payment, before you submit work for review and before substantial progress in the course. A person at ApraNova decides every request.";

export function Payments() {
  const payments = useQuery({
    queryKey: ["my-payments"],
    queryFn: async () => (await unwrap(api.GET("/api/payments/my-payments/"))).items,
  });
  const refunds = useQuery({
    queryKey: ["my-refund-requests"],
    queryFn: async () => (await unwrap(api.GET("/api/payments/my-refund-requests/"))).items,
  });
  return (
    <Page title="Payments" intro="Your payments and refund requests.">
      {payments.isPending ? <Loading label="Loading your payments" /> : null}
      <ErrorAlert error={payments.error} />
      {payments.data && payments.data.length === 0 ? <Text c="dimmed">No payments yet.</Text> : null}
      <Stack>
        {payments.data?.map((payment) => (
          <Card key={payment.id} withBorder padding="lg">
            <Group justify="space-between">
              <Stack gap={2}>
                <Text fw={600}>
                  {payment.track} · {money(payment.amount_cents, payment.currency)}
                </Text>
                <Text size="sm" c="dimmed">
                  {date(payment.created_at)}
                  {payment.refunded_amount_cents ? ` · refunded ${money(payment.refunded_amount_cents, payment.currency)}` : ""}
                </Text>
              </Stack>
              <StatusBadge status={payment.status} />
            </Group>
            {payment.status === "SUCCEEDED" ? <RefundForm paymentId={payment.id} /> : null}
          </Card>
        ))}
      </Stack>
      <section aria-labelledby="refunds-heading">
        <Title order={2} id="refunds-heading" mb="sm">
          Refund requests
        </Title>
        <ErrorAlert error={refunds.error} />
        {refunds.data && refunds.data.length === 0 ? <Text c="dimmed">You have not asked for a refund.</Text> : null}
        {refunds.data?.length ? (
          <Table.ScrollContainer minWidth={420}>
            <Table>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Asked</Table.Th>
                  <Table.Th>Amount</Table.Th>
                  <Table.Th>Status</Table.Th>
                  <Table.Th>Decision</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {refunds.data.map((r) => (
                  <Table.Tr key={r.id}>
                    <Table.Td>{date(r.created_at)}</Table.Td>
                    <Table.Td>{money(r.amount_cents, r.currency)}</Table.Td>
                    <Table.Td>
                      <StatusBadge status={r.status} />
                    </Table.Td>
                    <Table.Td>{r.decision_reason ?? "—"}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
        ) : null}
      </section>
    </Page>
  );
}

function RefundForm({ paymentId }: { paymentId: string }) {
  const queryClient = useQueryClient();
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState("");
  const request = useMutation({
    mutationFn: () => unwrap(api.POST("/api/payments/request-refund/", { body: { payment_id: paymentId, reason } })),
    onSuccess: () => {
      setOpen(false);
      void queryClient.invalidateQueries({ queryKey: ["my-refund-requests"] });
    },
  });
  const refused = request.error instanceof ApiError && request.error.status === 409;
  if (!open) {
    return (
      <Group mt="sm">
        <Button variant="subtle" size="xs" onClick={() => setOpen(true)}>
          Ask for a refund
        </Button>
        {request.isSuccess ? (
          <Text size="sm" c="green.8" role="status">
            Your request was sent. We will email you the decision.
          </Text>
        ) : null}
      </Group>
    );
  }
  return (
    <Stack
      mt="sm"
      component="form"
      onSubmit={(e) => {
        e.preventDefault();
        request.mutate();
      }}
    >
      <Text size="sm" c="dimmed">
        {REFUND_RULE}
      </Text>
      <Textarea label="Why are you asking for a refund?" value={reason} onChange={(e) => setReason(e.currentTarget.value)} required minRows={2} autosize />
      {request.error ? (
        <Alert color={refused ? "orange" : "red"} title="A refund cannot be requested" role="alert">
          {request.error.message}
          {refused ? <Text size="sm" mt={4}>{REFUND_RULE}</Text> : null}
        </Alert>
      ) : null}
      <Group>
        <Button type="submit" loading={request.isPending} disabled={!reason.trim()}>
          Send request
        </Button>
        <Button variant="default" onClick={() => setOpen(false)}>
          Cancel
        </Button>
      </Group>
    </Stack>
  );
}
