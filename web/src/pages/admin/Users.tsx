import { Anchor, Button, Card, Group, Select, SimpleGrid, Stack, Table, Text, TextInput, Textarea, Title } from "@mantine/core";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useParams, useSearchParams } from "react-router";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { ErrorAlert } from "../../components/ErrorAlert";
import { Loading } from "../../components/Loading";
import { Page } from "../../components/Page";
import { date, dateTime, money } from "../../format";
import { RefundActions, type RefundRequest } from "./refunds";
import { ConfirmModal, MoreButton, Outcome, Status, options, orNone, usePaged } from "./shared";

type Track = "DP" | "FSD";
type Role = components["schemas"]["AdminUser"]["role"];
type Detail = components["schemas"]["AdminUserDetail"];

const ROLES = [
  { value: "student", label: "Student" },
  { value: "trainer", label: "Trainer" },
  { value: "admin", label: "Admin" },
];
const TRACKS = [
  { value: "DP", label: "Data Professional (DP)" },
  { value: "FSD", label: "Full-Stack Developer (FSD)" },
];
const PROVISIONING = [
  { value: "NOT_STARTED", label: "Not started" },
  { value: "IN_PROGRESS", label: "Setting up" },
  { value: "SUCCEEDED", label: "Ready" },
  { value: "FAILED", label: "Failed" },
  { value: "DEPROVISIONED", label: "Deprovisioned" },
];

export function Users() {
  // The filters live in the address: a search can be shared and survives going back.
  const [params, setParams] = useSearchParams();
  const filters = {
    q: params.get("q") ?? "",
    role: params.get("role") ?? "",
    track: params.get("track") ?? "",
    status: params.get("status") ?? "",
    provisioning: params.get("provisioning") ?? "",
  };
  const [q, setQ] = useState(filters.q);
  const set = (key: keyof typeof filters, value: string | null) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    setParams(next, { replace: true });
  };
  const users = usePaged(["admin-users", filters], (cursor) =>
    unwrap(
      api.GET("/api/admin/users/", {
        params: {
          query: {
            q: orNone(filters.q.trim()),
            role: orNone(filters.role),
            track: orNone(filters.track) as Track | undefined,
            status: orNone(filters.status),
            provisioning: orNone(filters.provisioning),
            cursor,
            limit: 50,
          },
        },
      }),
    ),
  );
  return (
    <Page title="Users" intro="Find a person by the start of their email address or name, or by what they are." size="xl">
      <Stack
        component="form"
        role="search"
        aria-label="Find users"
        onSubmit={(e) => {
          e.preventDefault();
          set("q", q.trim());
        }}
      >
        <Group align="flex-end" wrap="wrap">
          <TextInput label="Email or name" placeholder="dana@ or Dana" value={q} onChange={(e) => setQ(e.currentTarget.value)} style={{ flex: "1 1 14rem" }} />
          <Button type="submit">Search</Button>
        </Group>
        <SimpleGrid cols={{ base: 1, xs: 2, md: 4 }}>
          <Select label="Role" placeholder="Any role" data={ROLES} value={filters.role || null} onChange={(v) => set("role", v)} clearable />
          <Select label="Track" placeholder="Any track" data={TRACKS} value={filters.track || null} onChange={(v) => set("track", v)} clearable />
          <Select label="Enrollment" placeholder="Any enrollment" data={options("enrollment")} value={filters.status || null} onChange={(v) => set("status", v)} clearable />
          <Select label="Tools" placeholder="Any provisioning" data={PROVISIONING} value={filters.provisioning || null} onChange={(v) => set("provisioning", v)} clearable />
        </SimpleGrid>
      </Stack>
      <ErrorAlert error={users.error} />
      {users.isPending ? <Loading label="Finding users" /> : null}
      {users.isSuccess && users.items.length === 0 ? <Text c="dimmed">Nobody matches.</Text> : null}
      {users.items.length ? (
        <Table.ScrollContainer minWidth={760}>
          <Table striped highlightOnHover aria-label="Users">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Name</Table.Th>
                <Table.Th>Email</Table.Th>
                <Table.Th>Role</Table.Th>
                <Table.Th>Track</Table.Th>
                <Table.Th>Enrollment</Table.Th>
                <Table.Th>Tools</Table.Th>
                <Table.Th>Joined</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {users.items.map((u) => (
                <Table.Tr key={u.id}>
                  <Table.Td>
                    <Anchor component={Link} to={`/admin/users/${u.id}`}>
                      {u.name || "(no name)"}
                    </Anchor>
                  </Table.Td>
                  <Table.Td style={{ wordBreak: "break-all" }}>{u.email}</Table.Td>
                  <Table.Td>{u.role}</Table.Td>
                  <Table.Td>{u.track ?? "—"}</Table.Td>
                  <Table.Td>
                    <Status kind="enrollment" status={u.enrollment_status} />
                  </Table.Td>
                  <Table.Td>
                    <Status kind="tool" status={u.provisioning_status} />
                  </Table.Td>
                  <Table.Td>{date(u.created_at)}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      ) : null}
      <MoreButton query={users} />
    </Page>
  );
}

const SETTLING = new Set(["NOT_STARTED", "IN_PROGRESS", "DEPROVISIONING"]);
const WATCH_MS = 180_000;

/** A person: profile, payments and refund requests, progress, tools, trainer, role, enrollment. */
export function User() {
  const { id = "" } = useParams();
  // After an action the page follows the workflows it started (a refund's deprovisioning, a
  // re-provisioning) for a few minutes, then stops asking.
  const [watchUntil, setWatchUntil] = useState(0);
  const [outcome, setOutcome] = useState<string | null>(null);
  const done = (message: string) => {
    setOutcome(message);
    setWatchUntil(Date.now() + WATCH_MS);
  };
  const user = useQuery({
    queryKey: ["admin-user", id],
    queryFn: () => unwrap(api.GET("/api/admin/users/{id}/", { params: { path: { id } } })),
    refetchInterval: (query) => {
      const tools = query.state.data?.tools ?? [];
      return Date.now() < watchUntil || tools.some((t) => SETTLING.has(t.status)) ? 2000 : false;
    },
  });
  if (user.isPending) return <Loading label="Loading the user" />;
  if (user.error || !user.data) {
    return (
      <Page title="User">
        <ErrorAlert error={user.error} />
      </Page>
    );
  }
  const { profile } = user.data;
  return (
    <Page title={profile.name || profile.email} intro={profile.email} size="xl">
      <Outcome message={outcome} onClose={() => setOutcome(null)} />
      <SimpleGrid cols={{ base: 1, md: 2 }} spacing="lg">
        <ProfileCard detail={user.data} />
        <PaymentsCard detail={user.data} onDone={done} />
        <ToolsCard detail={user.data} onDone={done} />
        <ProgressCard detail={user.data} />
        {profile.role === "student" ? <TrainerCard detail={user.data} onDone={done} /> : null}
        {profile.role === "student" && (profile.enrollment_status === "PENDING_PAYMENT" || profile.enrollment_status === "REFUNDED") ? (
          <EnrollCard detail={user.data} onDone={done} />
        ) : null}
        <RoleCard detail={user.data} onDone={done} />
      </SimpleGrid>
    </Page>
  );
}

function Section({ title, children }: { title: string; children: React.ReactNode }) {
  const id = `section-${title.toLowerCase().replace(/\W+/g, "-")}`;
  return (
    <Card withBorder padding="lg" component="section" aria-labelledby={id}>
      <Title order={2} fz="h4" id={id} mb="sm">
        {title}
      </Title>
      <Stack gap="sm">{children}</Stack>
    </Card>
  );
}

function Facts({ rows, label }: { rows: [string, React.ReactNode][]; label: string }) {
  return (
    <Table fz="sm" withRowBorders={false} aria-label={label} verticalSpacing={4}>
      <Table.Tbody>
        {rows.map(([name, value]) => (
          <Table.Tr key={name}>
            <Table.Th scope="row" w="40%" fw={500}>
              {name}
            </Table.Th>
            <Table.Td style={{ wordBreak: "break-word" }}>{value}</Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

function ProfileCard({ detail }: { detail: Detail }) {
  const p = detail.profile;
  return (
    <Section title="Profile and enrollment">
      <Facts
        label="Profile"
        rows={[
          ["Role", p.role],
          ["Track", p.track ?? "—"],
          ["Enrollment", <Status key="e" kind="enrollment" status={p.enrollment_status} />],
          ["Enrolled", dateTime(p.enrolled_at)],
          ["Completed", dateTime(p.completed_at)],
          ["Tools", <Status key="t" kind="tool" status={p.provisioning_status} />],
          ["Email confirmed", p.email_verified ? "Yes" : "No"],
          ["Account active", p.is_active ? "Yes" : "No"],
          ["Joined", dateTime(p.created_at)],
          ["Last sign-in", dateTime(p.last_login_at)],
        ]}
      />
      {p.provisioning_error ? (
        <Text size="sm" c="red.8">
          Last provisioning error: {p.provisioning_error}
        </Text>
      ) : null}
      <Anchor component={Link} to={`/admin/audit?subject_id=${p.id}`} size="sm">
        What happened to this account (audit log)
      </Anchor>
    </Section>
  );
}

/** The pending refund requests of this person (the admin list filtered by user). */
function usePendingRefunds(userId: string) {
  return useQuery({
    queryKey: ["admin-refunds", "pending-of", userId],
    queryFn: async () => {
      const found = await unwrap(
        api.GET("/api/admin/refund-requests/", { params: { query: { status: "PENDING", user_id: userId, limit: 100 } } }),
      );
      return found.items as RefundRequest[];
    },
  });
}

function PaymentsCard({ detail, onDone }: { detail: Detail; onDone: (m: string) => void }) {
  const p = detail.profile;
  const refunds = usePendingRefunds(p.id);
  return (
    <Section title="Payments">
      {detail.payments.totals.map((t) => (
        <Text size="sm" key={t.currency}>
          Paid {money(t.paid_cents, t.currency)} · refunded {money(t.refunded_cents, t.currency)} · net {money(t.net_cents, t.currency)}
        </Text>
      ))}
      {detail.payments.recent.length === 0 ? <Text c="dimmed">No payments.</Text> : null}
      {detail.payments.recent.length ? (
        <Table.ScrollContainer minWidth={360}>
          <Table fz="sm" aria-label="Payments of this user">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Date</Table.Th>
                <Table.Th>Track</Table.Th>
                <Table.Th>Amount</Table.Th>
                <Table.Th>Status</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {detail.payments.recent.map((pay) => (
                <Table.Tr key={pay.id}>
                  <Table.Td>{date(pay.created_at)}</Table.Td>
                  <Table.Td>{pay.track}</Table.Td>
                  <Table.Td>
                    {money(pay.amount_cents, pay.currency)}
                    {pay.refunded_amount_cents ? ` (${money(pay.refunded_amount_cents, pay.currency)} refunded)` : ""}
                  </Table.Td>
                  <Table.Td>
                    <Status kind="payment" status={pay.status} />
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      ) : null}
      {detail.payments.count > detail.payments.recent.length ? (
        <Text size="sm" c="dimmed">
          The latest {detail.payments.recent.length} of {detail.payments.count} payments.
        </Text>
      ) : null}
      <Title order={3} fz="md">
        Refund requests waiting for a decision
      </Title>
      <ErrorAlert error={refunds.error} />
      {refunds.data?.length === 0 ? <Text size="sm" c="dimmed">None.</Text> : null}
      {refunds.data?.map((r) => (
        <Card key={r.id} withBorder padding="sm" aria-label={`Refund request of ${money(r.amount_cents, r.currency)}`}>
          <Stack gap={6}>
            <Text size="sm">
              {money(r.amount_cents, r.currency)} for {r.track}, asked {dateTime(r.created_at)}
            </Text>
            {r.reason ? (
              <Text size="sm" c="dimmed">
                “{r.reason}”
              </Text>
            ) : null}
            <RefundActions request={r} who={p.email} onDone={onDone} />
          </Stack>
        </Card>
      ))}
    </Section>
  );
}

const TOOL_NAMES: Record<string, string> = {
  STUDENT_DATABASE: "PostgreSQL database",
  SUPERSET: "Superset",
  PREFECT: "Prefect",
  JUPYTER: "JupyterHub",
  WORKSPACE: "Workspace",
};

function ToolsCard({ detail, onDone }: { detail: Detail; onDone: (m: string) => void }) {
  const queryClient = useQueryClient();
  const [asking, setAsking] = useState(false);
  const p = detail.profile;
  const reprovision = useMutation({
    mutationFn: () => unwrap(api.POST("/api/admin/users/{id}/reprovision/", { params: { path: { id: p.id } } })),
    onSuccess: () => {
      setAsking(false);
      void queryClient.invalidateQueries({ queryKey: ["admin-user", p.id] });
      onDone(`The enrollment workflow runs again for ${p.email}: tools that failed are set up again. This page follows it.`);
    },
  });
  const canReprovision = p.role === "student" && p.enrollment_status === "ENROLLED";
  return (
    <Section title="Tools">
      {detail.tools.length === 0 ? <Text c="dimmed">No tools.</Text> : null}
      {detail.tools.length ? (
        <Table.ScrollContainer minWidth={360}>
          <Table fz="sm" aria-label="Tools of this user">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Tool</Table.Th>
                <Table.Th>State</Table.Th>
                <Table.Th>Since</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {detail.tools.map((t) => (
                <Table.Tr key={t.tool} data-tool={t.tool}>
                  <Table.Td>
                    {TOOL_NAMES[t.tool] ?? t.tool}
                    {t.error ? (
                      <Text size="xs" c="red.8">
                        {t.error}
                      </Text>
                    ) : null}
                  </Table.Td>
                  <Table.Td>
                    <Status kind="tool" status={t.status} />
                  </Table.Td>
                  <Table.Td>{dateTime(t.updated_at)}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      ) : null}
      {canReprovision ? (
        <Group>
          <Button variant="light" onClick={() => setAsking(true)}>
            Reprovision…
          </Button>
        </Group>
      ) : null}
      <ConfirmModal
        opened={asking}
        onClose={() => setAsking(false)}
        title="Run the enrollment workflow again?"
        confirmLabel="Reprovision"
        onConfirm={() => reprovision.mutate()}
        pending={reprovision.isPending}
        error={reprovision.error}
      >
        <Text size="sm">
          The {p.track} tools of {p.email} are set up again where they failed or are missing; tools that are ready are left as they are.
        </Text>
      </ConfirmModal>
    </Section>
  );
}

function ProgressCard({ detail }: { detail: Detail }) {
  return (
    <Section title="Progress">
      {detail.progress.length === 0 ? <Text c="dimmed">No track yet.</Text> : null}
      {detail.progress.map((project) => (
        <Text size="sm" key={project.project_id}>
          Project {project.number}: {project.title} — {project.status.toLowerCase().replaceAll("_", " ")}, {project.steps_completed}/{project.steps_total} steps
          {project.pending_submissions ? `, ${project.pending_submissions} waiting for review` : ""}
        </Text>
      ))}
    </Section>
  );
}

function TrainerCard({ detail, onDone }: { detail: Detail; onDone: (m: string) => void }) {
  const queryClient = useQueryClient();
  const p = detail.profile;
  const [trainerId, setTrainerId] = useState<string | null>(null);
  const trainers = useQuery({
    queryKey: ["admin-trainers", p.track],
    queryFn: () => unwrap(api.GET("/api/admin/users/", { params: { query: { role: "trainer", track: (p.track ?? undefined) as Track | undefined, limit: 100 } } })),
    enabled: Boolean(p.track),
  });
  const assign = useMutation({
    mutationFn: (id: string) => unwrap(api.POST("/api/admin/users/{id}/assign-trainer/", { params: { path: { id: p.id } }, body: { trainer_id: id } })),
    onSuccess: (result) => {
      void queryClient.invalidateQueries({ queryKey: ["admin-user", p.id] });
      const name = trainers.data?.items.find((t) => t.id === result.trainer_id)?.name ?? "the trainer";
      onDone(result.changed ? `${p.email} is now assigned to ${name}.` : `${p.email} was already assigned to ${name}.`);
    },
  });
  return (
    <Section title="Trainer">
      <Text size="sm">
        {detail.trainer ? `${detail.trainer.name} (${detail.trainer.email}), since ${date(detail.trainer.assigned_at)}` : "No trainer assigned."}
      </Text>
      {p.track ? (
        <Stack
          component="form"
          gap="xs"
          onSubmit={(e) => {
            e.preventDefault();
            if (trainerId) assign.mutate(trainerId);
          }}
        >
          <Select
            label={`A trainer of ${p.track}`}
            placeholder={trainers.isPending ? "Loading trainers…" : "Choose a trainer"}
            data={(trainers.data?.items ?? []).map((t) => ({ value: t.id, label: `${t.name} (${t.email})` }))}
            value={trainerId}
            onChange={setTrainerId}
            nothingFoundMessage="No trainers for this track"
          />
          <ErrorAlert error={trainers.error ?? assign.error} />
          <Group>
            <Button type="submit" variant="light" disabled={!trainerId} loading={assign.isPending}>
              {detail.trainer ? "Change trainer" : "Assign trainer"}
            </Button>
          </Group>
        </Stack>
      ) : (
        <Text size="sm" c="dimmed">
          A student gets a trainer once they have a track.
        </Text>
      )}
    </Section>
  );
}

function EnrollCard({ detail, onDone }: { detail: Detail; onDone: (m: string) => void }) {
  const queryClient = useQueryClient();
  const p = detail.profile;
  const [track, setTrack] = useState<string | null>(p.track);
  const [reason, setReason] = useState("");
  const [asking, setAsking] = useState(false);
  const enroll = useMutation({
    mutationFn: () =>
      unwrap(api.POST("/api/admin/users/{id}/enroll/", { params: { path: { id: p.id } }, body: { track: track as "DP" | "FSD", reason: reason.trim() } })),
    onSuccess: () => {
      setAsking(false);
      void queryClient.invalidateQueries({ queryKey: ["admin-user", p.id] });
      onDone(`${p.email} is being enrolled in ${track} without payment; their tools are being set up. This page follows it.`);
    },
  });
  const ready = Boolean(track) && reason.trim().length >= 3;
  return (
    <Section title="Enroll without payment">
      <Stack
        component="form"
        gap="xs"
        onSubmit={(e) => {
          e.preventDefault();
          if (ready) setAsking(true);
        }}
      >
        <Select label="Track" data={TRACKS} value={track} onChange={setTrack} allowDeselect={false} />
        <Textarea label="Why (kept in the audit log)" value={reason} onChange={(e) => setReason(e.currentTarget.value)} minRows={2} autosize maxLength={2000} />
        <Group>
          <Button type="submit" variant="light" disabled={!ready}>
            Enroll…
          </Button>
        </Group>
      </Stack>
      <ConfirmModal
        opened={asking}
        onClose={() => setAsking(false)}
        title={`Enroll in ${track} without payment?`}
        confirmLabel={`Enroll in ${track}`}
        onConfirm={() => enroll.mutate()}
        pending={enroll.isPending}
        error={enroll.error}
      >
        <Text size="sm">
          {p.email} gets the {track} track and its tools without paying. The reason is recorded in the audit log.
        </Text>
      </ConfirmModal>
    </Section>
  );
}

const CONSEQUENCE: Record<Role, (email: string, from: Role) => string> = {
  admin: (email) => `${email} gets the admin console: every person's data, payments and refunds, roles, policies and retention.`,
  trainer: (email, from) =>
    `${email} becomes a trainer: they review the work of the students assigned to them${from === "admin" ? " and lose the admin console" : ""}${from === "student" ? " and stop using ApraNova as a student" : ""}.`,
  student: (email, from) => `${email} loses the ${from === "admin" ? "admin console" : "trainer's review desk"} and uses ApraNova as a student.`,
};

function RoleCard({ detail, onDone }: { detail: Detail; onDone: (m: string) => void }) {
  const queryClient = useQueryClient();
  const p = detail.profile;
  const [role, setRole] = useState<Role | null>(null);
  const [asking, setAsking] = useState(false);
  const change = useMutation({
    mutationFn: (to: Role) => unwrap(api.POST("/api/admin/users/{id}/role/", { params: { path: { id: p.id } }, body: { role: to } })),
    onSuccess: (result) => {
      setAsking(false);
      setRole(null);
      void queryClient.invalidateQueries({ queryKey: ["admin-user", p.id] });
      void queryClient.invalidateQueries({ queryKey: ["admin-users"] });
      onDone(`${result.email} is now ${result.role === "admin" ? "an admin" : `a ${result.role}`} (was ${result.previous_role}).`);
    },
  });
  return (
    <Section title="Role">
      <Stack
        component="form"
        gap="xs"
        onSubmit={(e) => {
          e.preventDefault();
          if (role && role !== p.role) setAsking(true);
        }}
      >
        <Select label={`New role (now ${p.role})`} data={ROLES.filter((r) => r.value !== p.role)} value={role} onChange={(v) => setRole(v as Role | null)} placeholder="Choose a role" />
        <Group>
          <Button type="submit" variant="light" color="red" disabled={!role}>
            Change role…
          </Button>
        </Group>
      </Stack>
      <ConfirmModal
        opened={asking && role !== null}
        onClose={() => setAsking(false)}
        title={`Make ${p.email} ${role === "admin" ? "an admin" : `a ${role}`}?`}
        confirmLabel={`Make ${role}`}
        color="red"
        onConfirm={() => role && change.mutate(role)}
        pending={change.isPending}
        error={change.error}
      >
        <Text size="sm">{role ? CONSEQUENCE[role](p.email, p.role) : null}</Text>
        <Text size="sm" c="dimmed">
          The change is recorded in the audit log.
        </Text>
      </ConfirmModal>
    </Section>
  );
}
