import { Alert, Anchor, Button, Card, Group, PasswordInput, Stack, Table, Text, Textarea, Title } from "@mantine/core";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useNavigate } from "react-router";
import { api, unwrap } from "../../api/client";
import { useProfile } from "../../auth";
import { ErrorAlert } from "../../components/ErrorAlert";
import { Loading } from "../../components/Loading";
import { Page } from "../../components/Page";
import { bytes, date, dateTime } from "../../format";
import { StatusBadge } from "./status";

export function Privacy() {
  return (
    <Page title="Privacy centre" intro="What you agreed to, a copy of your data, and deleting your account.">
      <Consents />
      <Exports />
      <Deletion />
    </Page>
  );
}

function Consents() {
  const consents = useQuery({
    queryKey: ["my-consents"],
    queryFn: async () => (await unwrap(api.GET("/api/compliance/my-consents/"))).items,
  });
  return (
    <section aria-labelledby="consents-heading">
      <Title order={2} id="consents-heading" mb="sm">
        Your consents
      </Title>
      <Text size="sm" mb="xs">
        Read the current{" "}
        <Anchor component={Link} to="/privacy-policy">
          privacy policy
        </Anchor>{" "}
        and{" "}
        <Anchor component={Link} to="/terms">
          terms
        </Anchor>
        .
      </Text>
      {consents.isPending ? <Loading /> : null}
      <ErrorAlert error={consents.error} />
      {consents.data?.length ? (
        <Table.ScrollContainer minWidth={420}>
          <Table aria-label="Consents">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Accepted</Table.Th>
                <Table.Th>Privacy policy</Table.Th>
                <Table.Th>Terms</Table.Th>
                <Table.Th>In force</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {consents.data.map((c) => (
                <Table.Tr key={c.id}>
                  <Table.Td>{dateTime(c.accepted_at)}</Table.Td>
                  <Table.Td>{c.privacy_version}</Table.Td>
                  <Table.Td>{c.terms_version}</Table.Td>
                  <Table.Td>{c.in_force ? "Yes" : "No"}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      ) : null}
    </section>
  );
}

function Exports() {
  const queryClient = useQueryClient();
  const list = useQuery({
    queryKey: ["exports"],
    queryFn: async () => (await unwrap(api.GET("/api/compliance/exports/"))).items,
    refetchInterval: (query) => (query.state.data?.some((e) => e.status === "PENDING") ? 2000 : false),
  });
  const request = useMutation({
    mutationFn: () => unwrap(api.POST("/api/compliance/export-data/")),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: ["exports"] }),
  });
  const download = useMutation({
    mutationFn: (id: string) => unwrap(api.GET("/api/compliance/exports/{id}/", { params: { path: { id } } })),
    onSuccess: (exported) => {
      if (exported.download_url) window.location.assign(exported.download_url);
    },
  });
  return (
    <section aria-labelledby="exports-heading">
      <Title order={2} id="exports-heading" mb="sm">
        A copy of your data
      </Title>
      <Card withBorder padding="lg">
        <Stack>
          <Text size="sm">We prepare a file with everything we hold about you. It is ready in a minute and can be downloaded for a few days.</Text>
          <Group>
            <Button onClick={() => request.mutate()} loading={request.isPending}>
              Request my data
            </Button>
          </Group>
          <ErrorAlert error={request.error ?? download.error} />
          {list.isPending ? <Loading /> : null}
          <ErrorAlert error={list.error} />
          {list.data && list.data.length === 0 ? <Text c="dimmed" size="sm">No exports yet.</Text> : null}
          {list.data?.map((e) => (
            <Group key={e.id} justify="space-between" aria-label={`Export of ${dateTime(e.requested_at)}`}>
              <Text size="sm">
                Requested {dateTime(e.requested_at)}
                {e.size_bytes ? ` · ${bytes(e.size_bytes)}` : ""}
                {e.expires_at ? ` · available until ${date(e.expires_at)}` : ""}
              </Text>
              <Group gap="xs">
                <StatusBadge status={e.status} />
                {e.status === "READY" ? (
                  <Button size="xs" variant="light" onClick={() => download.mutate(e.id)} loading={download.isPending && download.variables === e.id}>
                    Download
                  </Button>
                ) : null}
              </Group>
            </Group>
          ))}
        </Stack>
      </Card>
    </section>
  );
}

function Deletion() {
  const queryClient = useQueryClient();
  const profile = useProfile();
  const [password, setPassword] = useState("");
  const [reason, setReason] = useState("");
  const [open, setOpen] = useState(false);
  const navigate = useNavigate();
  const scheduled = profile.data?.deletion_scheduled_for ?? null;
  const schedule = useMutation({
    mutationFn: () => unwrap(api.POST("/api/compliance/delete-account/", { body: { password, reason: reason || null } })),
    // Scheduling signs the account out on every device (the API ends its sessions): the sign-in
    // page forgets this session and says when the deletion happens and how to cancel it.
    onSuccess: (scheduledDeletion) => {
      navigate(`/login?deletion_scheduled=${encodeURIComponent(scheduledDeletion.scheduled_for)}&next=${encodeURIComponent("/account/privacy")}`, {
        replace: true,
      });
    },
  });
  const cancel = useMutation({
    mutationFn: () => unwrap(api.POST("/api/compliance/cancel-deletion/")),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: ["me"] }),
  });
  return (
    <section aria-labelledby="deletion-heading">
      <Title order={2} id="deletion-heading" mb="sm">
        Delete your account
      </Title>
      <Card withBorder padding="lg">
        {scheduled ? (
          <Stack>
            <Alert color="orange" title="Your account is scheduled for deletion" role="status">
              Everything will be erased on {date(scheduled)}. Until then you can change your mind.
            </Alert>
            <ErrorAlert error={cancel.error} />
            <Group>
              <Button onClick={() => cancel.mutate()} loading={cancel.isPending}>
                Cancel the deletion
              </Button>
            </Group>
          </Stack>
        ) : open ? (
          <Stack
            component="form"
            onSubmit={(e) => {
              e.preventDefault();
              schedule.mutate();
            }}
          >
            <Text size="sm">
              Your account, tools and work will be erased after a grace period. Payment records we must keep by law are kept without your
              name. You will be signed out on every device; sign in again during the grace period to cancel. Enter your password to
              confirm.
            </Text>
            <PasswordInput label="Password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.currentTarget.value)} required />
            <Textarea label="Why are you leaving? (optional)" value={reason} onChange={(e) => setReason(e.currentTarget.value)} autosize minRows={2} />
            <ErrorAlert error={schedule.error} />
            <Group>
              <Button color="red" type="submit" loading={schedule.isPending} disabled={!password}>
                Delete my account
              </Button>
              <Button variant="default" onClick={() => setOpen(false)}>
                Keep my account
              </Button>
            </Group>
          </Stack>
        ) : (
          <Group justify="space-between">
            <Text size="sm">Deleting is scheduled, with a grace period in which you can cancel.</Text>
            <Button color="red" variant="light" onClick={() => setOpen(true)}>
              Delete my account…
            </Button>
          </Group>
        )}
      </Card>
    </section>
  );
}
