import {
  Anchor,
  Button,
  Card,
  Code,
  Group,
  NumberInput,
  Paper,
  SegmentedControl,
  Select,
  SimpleGrid,
  Stack,
  Switch,
  Table,
  Tabs,
  Text,
  TextInput,
  Textarea,
  Title,
} from "@mantine/core";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useSearchParams } from "react-router";
import { api, unwrap } from "../../api/client";
import { ApiError } from "../../api/errors";
import type { components } from "../../api/schema";
import { ErrorAlert } from "../../components/ErrorAlert";
import { Loading } from "../../components/Loading";
import { Page } from "../../components/Page";
import { date, dateTime } from "../../format";
import { ConfirmModal, MoreButton, Outcome, Status, options, orNone, usePaged } from "./shared";
import { localInputValue, nextVersion, retentionProblem } from "./forms";

type Track = "DP" | "FSD";
type SubmissionStatus = "PENDING" | "APPROVED" | "CHANGES_REQUESTED" | "SUPERSEDED";

export function Submissions() {
  const [params, setParams] = useSearchParams();
  const status = params.get("status") ?? "";
  const track = params.get("track") ?? "";
  const set = (key: string, value: string | null) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    setParams(next, { replace: true });
  };
  const submissions = usePaged(["admin-submissions", status, track], (cursor) =>
    unwrap(
      api.GET("/api/admin/submissions/", {
        params: { query: { status: orNone(status) as SubmissionStatus | undefined, track: orNone(track) as Track | undefined, cursor, limit: 50 } },
      }),
    ),
  );
  return (
    <Page title="Submissions" intro="Every student's submitted work, newest first." size="xl">
      <Group wrap="wrap">
        <Select label="Status" placeholder="Any status" data={options("submission")} value={status || null} onChange={(v) => set("status", v)} clearable />
        <Select
          label="Track"
          placeholder="Any track"
          data={[
            { value: "DP", label: "DP" },
            { value: "FSD", label: "FSD" },
          ]}
          value={track || null}
          onChange={(v) => set("track", v)}
          clearable
        />
      </Group>
      <ErrorAlert error={submissions.error} />
      {submissions.isPending ? <Loading label="Loading submissions" /> : null}
      {submissions.isSuccess && submissions.items.length === 0 ? <Text c="dimmed">No submissions.</Text> : null}
      {submissions.items.length ? (
        <Table.ScrollContainer minWidth={820}>
          <Table striped aria-label="Submissions">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Submitted</Table.Th>
                <Table.Th>Student</Table.Th>
                <Table.Th>Project</Table.Th>
                <Table.Th>Deliverable</Table.Th>
                <Table.Th>Attempt</Table.Th>
                <Table.Th>Status</Table.Th>
                <Table.Th>Reviewed</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {submissions.items.map((s) => (
                <Table.Tr key={s.id}>
                  <Table.Td>{dateTime(s.submitted_at)}</Table.Td>
                  <Table.Td style={{ wordBreak: "break-all" }}>
                    <Anchor component={Link} to={`/admin/users/${s.student_id}`}>
                      {s.student_email}
                    </Anchor>
                  </Table.Td>
                  <Table.Td>
                    {s.track} · {s.project_number}. {s.project_title}
                  </Table.Td>
                  <Table.Td>{s.deliverable_title}</Table.Td>
                  <Table.Td>{s.attempt}</Table.Td>
                  <Table.Td>
                    <Status kind="submission" status={s.status} />
                  </Table.Td>
                  <Table.Td>{dateTime(s.reviewed_at)}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      ) : null}
      <MoreButton query={submissions} />
    </Page>
  );
}

const AUDIT_FILTERS = ["action", "resource_type", "resource_id", "actor_id", "subject_id", "from", "to"] as const;
type AuditFilters = Record<(typeof AUDIT_FILTERS)[number], string>;

export function AuditLog() {
  const [params, setParams] = useSearchParams();
  const applied = Object.fromEntries(AUDIT_FILTERS.map((k) => [k, params.get(k) ?? ""])) as AuditFilters;
  const [draft, setDraft] = useState<AuditFilters>(applied);
  const field = (key: keyof AuditFilters) => ({
    value: draft[key],
    onChange: (e: React.ChangeEvent<HTMLInputElement>) => setDraft({ ...draft, [key]: e.currentTarget.value }),
    error: (logs.error instanceof ApiError && logs.error.fields[`query.${key}`]) || (logs.error instanceof ApiError && logs.error.fields[key]) || undefined,
  });
  // datetime-local is the admin's local time; the API takes ISO 8601 with its offset.
  const iso = (value: string) => (value ? new Date(value).toISOString() : undefined);
  const logs = usePaged(["admin-audit", applied], (cursor) =>
    unwrap(
      api.GET("/api/admin/audit-logs/", {
        params: {
          query: {
            action: orNone(applied.action.trim().toUpperCase()),
            resource_type: orNone(applied.resource_type.trim().toLowerCase()),
            resource_id: orNone(applied.resource_id.trim()),
            actor_id: orNone(applied.actor_id.trim()),
            subject_id: orNone(applied.subject_id.trim()),
            from: iso(applied.from),
            to: iso(applied.to),
            cursor,
            limit: 50,
          },
        },
      }),
    ),
  );
  return (
    <Page title="Audit log" intro="Who did what, newest first." size="xl">
      <Stack
        component="form"
        role="search"
        aria-label="Filter the audit log"
        onSubmit={(e) => {
          e.preventDefault();
          const next = new URLSearchParams();
          for (const key of AUDIT_FILTERS) if (draft[key].trim()) next.set(key, draft[key].trim());
          setParams(next, { replace: true });
        }}
      >
        <SimpleGrid cols={{ base: 1, xs: 2, md: 4 }}>
          <TextInput label="Action" placeholder="e.g. REFUND_DECIDED" {...field("action")} />
          <TextInput label="Resource type" placeholder="e.g. refund_request" {...field("resource_type")} />
          <TextInput label="Resource id" {...field("resource_id")} />
          <TextInput label="Actor id" placeholder="who did it (user id)" {...field("actor_id")} />
          <TextInput label="Subject id" placeholder="whom it concerned (user id)" {...field("subject_id")} />
          <TextInput type="datetime-local" label="From" {...field("from")} />
          <TextInput type="datetime-local" label="To" {...field("to")} />
        </SimpleGrid>
        <Group>
          <Button type="submit">Filter</Button>
          <Button
            variant="default"
            onClick={() => {
              setDraft(Object.fromEntries(AUDIT_FILTERS.map((k) => [k, ""])) as AuditFilters);
              setParams(new URLSearchParams(), { replace: true });
            }}
          >
            Clear
          </Button>
        </Group>
      </Stack>
      <ErrorAlert error={logs.error} />
      {logs.isPending ? <Loading label="Loading the audit log" /> : null}
      {logs.isSuccess && logs.items.length === 0 ? <Text c="dimmed">Nothing matches.</Text> : null}
      {logs.items.length ? (
        <Table.ScrollContainer minWidth={900}>
          <Table striped aria-label="Audit log" fz="sm">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>When</Table.Th>
                <Table.Th>Action</Table.Th>
                <Table.Th>By</Table.Th>
                <Table.Th>Concerning</Table.Th>
                <Table.Th>Resource</Table.Th>
                <Table.Th>Details</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {logs.items.map((entry) => (
                <Table.Tr key={entry.id}>
                  <Table.Td style={{ whiteSpace: "nowrap" }}>{dateTime(entry.occurred_at)}</Table.Td>
                  <Table.Td>{entry.action}</Table.Td>
                  <Table.Td>
                    {entry.actor_id ? (
                      <Anchor component={Link} to={`/admin/users/${entry.actor_id}`}>
                        {entry.actor_role ?? "user"}
                      </Anchor>
                    ) : (
                      (entry.actor_role ?? "system")
                    )}
                  </Table.Td>
                  <Table.Td>
                    {entry.subject_id ? (
                      <Anchor component={Link} to={`/admin/users/${entry.subject_id}`}>
                        the user
                      </Anchor>
                    ) : (
                      "—"
                    )}
                  </Table.Td>
                  <Table.Td style={{ wordBreak: "break-all" }}>{[entry.resource_type, entry.resource_id].filter(Boolean).join(" ") || "—"}</Table.Td>
                  <Table.Td>
                    <Code block style={{ whiteSpace: "pre-wrap", wordBreak: "break-all", maxWidth: 360 }}>
                      {JSON.stringify(entry.details)}
                    </Code>
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      ) : null}
      <MoreButton query={logs} />
    </Page>
  );
}

type Kind = "privacy" | "terms";

export function Policies() {
  const queryClient = useQueryClient();
  const [kind, setKind] = useState<Kind>("privacy");
  const current = useQuery({
    queryKey: ["policy", kind],
    queryFn: () => unwrap(api.GET(kind === "privacy" ? "/api/compliance/privacy-policy/" : "/api/compliance/terms/")),
  });
  const [version, setVersion] = useState("");
  const [effective, setEffective] = useState("");
  const [summary, setSummary] = useState("");
  const [content, setContent] = useState("");
  const [asking, setAsking] = useState(false);
  const [outcome, setOutcome] = useState<string | null>(null);
  const latest = current.data?.upcoming?.version ?? current.data?.version;
  const suggested = latest ? nextVersion(latest) : "";
  const versionValue = version || suggested;
  const publish = useMutation({
    mutationFn: () =>
      unwrap(
        api.POST("/api/admin/policies/", {
          body: {
            kind,
            version: versionValue,
            summary: summary.trim(),
            content,
            effective_at: effective ? new Date(effective).toISOString() : new Date().toISOString(),
          },
        }),
      ),
    onSuccess: (published) => {
      setAsking(false);
      setVersion("");
      setSummary("");
      setContent("");
      setEffective("");
      void queryClient.invalidateQueries({ queryKey: ["policy"] });
      setOutcome(
        `${published.kind === "privacy" ? "Privacy policy" : "Terms"} version ${published.version} ${published.in_force ? "is in force now: every student is asked to accept it on their next visit" : `takes effect on ${dateTime(published.effective_at)}`}.`,
      );
    },
  });
  const fields = publish.error instanceof ApiError ? publish.error.fields : {};
  const ready = Boolean(versionValue && summary.trim() && content.trim());
  const name = kind === "privacy" ? "privacy policy" : "terms";
  return (
    <Page title="Policies" intro="Publish a new version of the privacy policy or the terms, now or for a later date." size="lg">
      <Outcome message={outcome} onClose={() => setOutcome(null)} />
      <Stack gap={4}>
        <Text size="sm" fw={500} id="kind-label">
          Document
        </Text>
        <SegmentedControl
          aria-labelledby="kind-label"
          value={kind}
          onChange={(v) => {
            setKind(v as Kind);
            setVersion("");
          }}
          data={[
            { value: "privacy", label: "Privacy policy" },
            { value: "terms", label: "Terms" },
          ]}
          maw={360}
        />
      </Stack>
      <ErrorAlert error={current.error} />
      {current.data ? (
        <Text size="sm">
          In force: version {current.data.version}, since {date(current.data.effective_at)}.
          {current.data.upcoming ? ` Scheduled: version ${current.data.upcoming.version} from ${dateTime(current.data.upcoming.effective_at)}.` : ""}
        </Text>
      ) : null}
      <Stack
        component="form"
        aria-label={`Publish a ${name} version`}
        onSubmit={(e) => {
          e.preventDefault();
          if (ready) setAsking(true);
        }}
      >
        <SimpleGrid cols={{ base: 1, sm: 2 }}>
          <TextInput
            label="Version"
            description="Higher than every published version, e.g. 1.1"
            required
            value={versionValue}
            onChange={(e) => setVersion(e.currentTarget.value)}
            error={fields.version}
          />
          <TextInput
            type="datetime-local"
            label="Takes effect"
            description="Empty: now. Your local time."
            value={effective}
            min={localInputValue(new Date())}
            onChange={(e) => setEffective(e.currentTarget.value)}
            error={fields.effective_at}
          />
        </SimpleGrid>
        <Textarea label="What changed" description="A few lines every student reads before accepting" required value={summary} onChange={(e) => setSummary(e.currentTarget.value)} error={fields.summary} autosize minRows={2} maxLength={2000} />
        <Tabs defaultValue="write">
          <Tabs.List>
            <Tabs.Tab value="write">Text</Tabs.Tab>
            <Tabs.Tab value="preview">Preview</Tabs.Tab>
          </Tabs.List>
          <Tabs.Panel value="write" pt="sm">
            <Textarea label="Full text" required value={content} onChange={(e) => setContent(e.currentTarget.value)} error={fields.content} autosize minRows={8} maxRows={24} />
          </Tabs.Panel>
          <Tabs.Panel value="preview" pt="sm">
            <Paper withBorder p="lg" aria-label="Preview">
              <Title order={2} fz="h3" mb="xs">
                {kind === "privacy" ? "Privacy policy" : "Terms"} · version {versionValue || "?"}
              </Title>
              {summary.trim() ? (
                <Text size="sm" c="dimmed" mb="sm">
                  {summary}
                </Text>
              ) : null}
              <Text style={{ whiteSpace: "pre-wrap" }}>{content || "Nothing written yet."}</Text>
            </Paper>
          </Tabs.Panel>
        </Tabs>
        <Group>
          <Button type="submit" disabled={!ready}>
            Publish…
          </Button>
        </Group>
      </Stack>
      <ConfirmModal
        opened={asking}
        onClose={() => setAsking(false)}
        title={`Publish ${name} version ${versionValue}?`}
        confirmLabel={`Publish version ${versionValue}`}
        color="red"
        onConfirm={() => publish.mutate()}
        pending={publish.isPending}
        error={publish.error}
      >
        <Text size="sm">
          {effective
            ? `From ${dateTime(new Date(effective).toISOString())}, every student must accept version ${versionValue} before they can go on using ApraNova.`
            : `Right away, every student must accept version ${versionValue} before they can go on using ApraNova.`}{" "}
          A published version cannot be withdrawn or edited.
        </Text>
      </ConfirmModal>
    </Page>
  );
}

type RetentionPolicy = components["schemas"]["RetentionPolicy"];

export function Retention() {
  const queryClient = useQueryClient();
  const policies = useQuery({ queryKey: ["admin-retention"], queryFn: () => unwrap(api.GET("/api/admin/retention-policies/")) });
  const [edits, setEdits] = useState<Record<string, { days?: number; active?: boolean }>>({});
  const [asking, setAsking] = useState(false);
  const [outcome, setOutcome] = useState<string | null>(null);
  const items = policies.data?.items ?? [];
  const changed = items
    .map((p) => ({ policy: p, edit: edits[p.resource_type] }))
    .filter(({ policy, edit }) => edit && ((edit.days !== undefined && edit.days !== policy.retention_days) || (edit.active !== undefined && edit.active !== policy.is_active)));
  const problems = Object.fromEntries(items.map((p) => [p.resource_type, retentionProblem(edits[p.resource_type]?.days ?? p.retention_days, p.legal_minimum_days)]));
  const blocked = Object.values(problems).some(Boolean);
  const shorter = changed.filter(({ policy, edit }) => edit?.days !== undefined && edit.days < policy.retention_days);
  const save = useMutation({
    mutationFn: () =>
      unwrap(
        api.PUT("/api/admin/retention-policies/", {
          body: changed.map(({ policy, edit }) => ({
            resource_type: policy.resource_type,
            retention_days: edit?.days ?? policy.retention_days,
            ...(edit?.active !== undefined ? { is_active: edit.active } : {}),
          })),
        }),
      ),
    onSuccess: () => {
      setAsking(false);
      setOutcome(`Saved ${changed.length} retention ${changed.length === 1 ? "period" : "periods"}. The next nightly purge uses them.`);
      setEdits({});
      void queryClient.invalidateQueries({ queryKey: ["admin-retention"] });
    },
  });
  return (
    <Page title="Retention" intro="How long each kind of data is kept before the nightly purge removes it. Periods cannot go below their legal minimum." size="lg">
      <Outcome message={outcome} onClose={() => setOutcome(null)} />
      <ErrorAlert error={policies.error} />
      {policies.isPending ? <Loading label="Loading retention settings" /> : null}
      <Stack>
        {items.map((p: RetentionPolicy) => {
          const edit = edits[p.resource_type] ?? {};
          return (
            <Card key={p.resource_type} withBorder padding="md" component="section" aria-label={p.resource_type}>
              <Group justify="space-between" align="flex-start" wrap="wrap">
                <Stack gap={2} style={{ flex: "1 1 16rem" }}>
                  <Text fw={600}>{p.resource_type.toLowerCase().replaceAll("_", " ")}</Text>
                  <Text size="sm" c="dimmed">
                    {p.description}
                  </Text>
                  <Text size="sm">
                    {p.legal_minimum_days != null ? `Legal minimum: ${p.legal_minimum_days} days (about ${Math.round(p.legal_minimum_days / 365)} years).` : "No legal minimum."}
                    {p.legal_requirement ? " Required by law." : ""} Changed {date(p.updated_at)}.
                  </Text>
                </Stack>
                <Stack gap="xs" w={200}>
                  <NumberInput
                    label="Keep for (days)"
                    min={p.legal_minimum_days ?? 1}
                    max={36500}
                    allowDecimal={false}
                    value={edit.days ?? p.retention_days}
                    onChange={(v) => setEdits({ ...edits, [p.resource_type]: { ...edit, days: typeof v === "number" ? v : Number(v) || 0 } })}
                    error={problems[p.resource_type] ?? undefined}
                  />
                  <Switch
                    label="Purge active"
                    checked={edit.active ?? p.is_active}
                    onChange={(e) => setEdits({ ...edits, [p.resource_type]: { ...edit, active: e.currentTarget.checked } })}
                  />
                </Stack>
              </Group>
            </Card>
          );
        })}
      </Stack>
      {items.length ? (
        <Group>
          <Button disabled={changed.length === 0 || blocked} onClick={() => setAsking(true)}>
            Save changes…
          </Button>
          {changed.length ? (
            <Button variant="default" onClick={() => setEdits({})}>
              Undo my changes
            </Button>
          ) : null}
        </Group>
      ) : null}
      <ConfirmModal
        opened={asking}
        onClose={() => setAsking(false)}
        title="Save the retention periods?"
        confirmLabel="Save"
        color={shorter.length ? "red" : "indigo"}
        onConfirm={() => save.mutate()}
        pending={save.isPending}
        error={save.error}
      >
        <Stack gap={4}>
          {changed.map(({ policy, edit }) => (
            <Text size="sm" key={policy.resource_type}>
              {policy.resource_type.toLowerCase().replaceAll("_", " ")}: {policy.retention_days} → {edit?.days ?? policy.retention_days} days
              {edit?.active !== undefined && edit.active !== policy.is_active ? (edit.active ? ", purge turned on" : ", purge turned off") : ""}
            </Text>
          ))}
        </Stack>
        {shorter.length ? (
          <Text size="sm" fw={500}>
            Shorter periods mean the next nightly purge deletes data that is now older than the new period. It cannot be brought back.
          </Text>
        ) : null}
      </ConfirmModal>
    </Page>
  );
}
