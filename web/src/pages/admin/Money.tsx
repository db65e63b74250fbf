import { Anchor, Select, Table, Text } from "@mantine/core";
import { useState } from "react";
import { Link, useSearchParams } from "react-router";
import { api, unwrap } from "../../api/client";
import { ErrorAlert } from "../../components/ErrorAlert";
import { Loading } from "../../components/Loading";
import { Page } from "../../components/Page";
import { date, dateTime, money } from "../../format";
import { RefundActions } from "./refunds";
import { MoreButton, Outcome, Status, options, orNone, usePaged } from "./shared";

type PaymentStatus = "PENDING" | "SUCCEEDED" | "FAILED" | "EXPIRED" | "REFUNDED" | "PARTIALLY_REFUNDED" | "DISPUTED";
type RefundStatus = "PENDING" | "APPROVED" | "REJECTED" | "FAILED";

function useFilter(name: string, initial = "") {
  const [params, setParams] = useSearchParams();
  const value = params.has(name) ? params.get(name)! : initial;
  const set = (next: string | null) => {
    const copy = new URLSearchParams(params);
    copy.set(name, next ?? "");
    setParams(copy, { replace: true });
  };
  return [value, set] as const;
}

export function Payments() {
  const [status, setStatus] = useFilter("status");
  const payments = usePaged(["admin-payments", status], (cursor) =>
    unwrap(api.GET("/api/admin/payments/", { params: { query: { status: orNone(status) as PaymentStatus | undefined, cursor, limit: 50 } } })),
  );
  return (
    <Page title="Payments" intro="Every payment, newest first." size="xl">
      <Select label="Status" placeholder="Any status" data={options("payment")} value={status || null} onChange={setStatus} clearable maw={320} />
      <ErrorAlert error={payments.error} />
      {payments.isPending ? <Loading label="Loading payments" /> : null}
      {payments.isSuccess && payments.items.length === 0 ? <Text c="dimmed">No payments.</Text> : null}
      {payments.items.length ? (
        <Table.ScrollContainer minWidth={760}>
          <Table striped aria-label="Payments">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Date</Table.Th>
                <Table.Th>Who</Table.Th>
                <Table.Th>Track</Table.Th>
                <Table.Th>Amount</Table.Th>
                <Table.Th>Status</Table.Th>
                <Table.Th>Notes</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {payments.items.map((p) => (
                <Table.Tr key={p.id}>
                  <Table.Td>{dateTime(p.created_at)}</Table.Td>
                  <Table.Td style={{ wordBreak: "break-all" }}>
                    {p.user_id ? (
                      <Anchor component={Link} to={`/admin/users/${p.user_id}`}>
                        {p.email ?? p.name ?? "the account"}
                      </Anchor>
                    ) : (
                      (p.email ?? "—")
                    )}
                  </Table.Td>
                  <Table.Td>{p.track}</Table.Td>
                  <Table.Td>
                    {money(p.amount_cents, p.currency)}
                    {p.refunded_amount_cents ? ` (${money(p.refunded_amount_cents, p.currency)} refunded)` : ""}
                  </Table.Td>
                  <Table.Td>
                    <Status kind="payment" status={p.status} />
                  </Table.Td>
                  <Table.Td>
                    {[p.disputed ? `Disputed${p.dispute_status ? ` (${p.dispute_status})` : ""}` : null, p.failure_message, p.kind !== "checkout" ? p.kind : null]
                      .filter(Boolean)
                      .join(" · ") || "—"}
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      ) : null}
      <MoreButton query={payments} />
    </Page>
  );
}

export function Refunds() {
  const [status, setStatus] = useFilter("status", "PENDING");
  const [outcome, setOutcome] = useState<string | null>(null);
  const refunds = usePaged(["admin-refunds", status], (cursor) =>
    unwrap(api.GET("/api/admin/refund-requests/", { params: { query: { status: orNone(status) as RefundStatus | undefined, cursor, limit: 50 } } })),
  );
  return (
    <Page title="Refund requests" intro="Oldest first. Approving refunds the money through Stripe; rejecting needs a reason the student reads." size="xl">
      <Outcome message={outcome} onClose={() => setOutcome(null)} />
      <Select label="Status" placeholder="Any status" data={options("refund")} value={status || null} onChange={setStatus} clearable maw={320} />
      <ErrorAlert error={refunds.error} />
      {refunds.isPending ? <Loading label="Loading refund requests" /> : null}
      {refunds.isSuccess && refunds.items.length === 0 ? <Text c="dimmed">No refund requests{status === "PENDING" ? " waiting for a decision" : ""}.</Text> : null}
      {refunds.items.length ? (
        <Table.ScrollContainer minWidth={820}>
          <Table striped aria-label="Refund requests">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Asked</Table.Th>
                <Table.Th>Who</Table.Th>
                <Table.Th>Amount</Table.Th>
                <Table.Th>Their reason</Table.Th>
                <Table.Th>Status</Table.Th>
                <Table.Th>Decision</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {refunds.items.map((r) => (
                <Table.Tr key={r.id}>
                  <Table.Td>{date(r.created_at)}</Table.Td>
                  <Table.Td>
                    {r.user_id ? (
                      <Anchor component={Link} to={`/admin/users/${r.user_id}`}>
                        Open the student
                      </Anchor>
                    ) : (
                      "Account erased"
                    )}
                  </Table.Td>
                  <Table.Td>
                    {money(r.amount_cents, r.currency)} · {r.track}
                  </Table.Td>
                  <Table.Td>{r.reason ?? "—"}</Table.Td>
                  <Table.Td>
                    <Status kind="refund" status={r.status} />
                  </Table.Td>
                  <Table.Td>
                    {r.status === "PENDING" ? (
                      <RefundActions request={r} who="the student" onDone={setOutcome} />
                    ) : (
                      <Text size="sm">
                        {dateTime(r.decided_at)}
                        {r.decision_reason ? ` · ${r.decision_reason}` : ""}
                      </Text>
                    )}
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      ) : null}
      <MoreButton query={refunds} />
    </Page>
  );
}
