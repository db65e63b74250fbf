import { Anchor, Badge, Button, Card, Group, NativeSelect, SimpleGrid, Stack, Text } from "@mantine/core";
import { useInfiniteQuery, useQuery } from "@tanstack/react-query";
import { Link, useSearchParams } from "react-router";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { ErrorAlert } from "../../components/ErrorAlert";
import { Loading } from "../../components/Loading";
import { Page } from "../../components/Page";
import { dateTime } from "../../format";
import { StatusBadge } from "../student/status";
import { readFilters, STATUS_WORDS, STATUSES, TRACKS, waitedTone, waitedWords, writeFilters, type QueueFilters } from "./desk";
import { RoleGate, TRAINER_ROLES } from "./Gate";

type Queued = components["schemas"]["QueuedSubmission"];

const PAGE = 20;

function queuePage(filters: QueueFilters, cursor: string | null, limit = PAGE) {
  return unwrap(
    api.GET("/api/trainer/submissions/", {
      params: {
        query: {
          status: filters.status,
          track: filters.track ?? undefined,
          project: filters.project ?? undefined,
          cursor: cursor ?? undefined,
          limit,
        },
      },
    }),
  );
}

export function Queue() {
  return (
    <RoleGate roles={TRAINER_ROLES}>
      <QueuePage />
    </RoleGate>
  );
}

function QueuePage() {
  const [params, setParams] = useSearchParams();
  const filters = readFilters(params);
  const queue = useInfiniteQuery({
    queryKey: ["trainer-queue", filters],
    queryFn: ({ pageParam }) => queuePage(filters, pageParam),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor ?? null,
  });
  // The projects offered by the project filter: those with submissions in this status (and track).
  const projects = useQuery({
    queryKey: ["trainer-queue-projects", filters.status, filters.track],
    queryFn: () => queuePage({ ...filters, project: null }, null, 100),
    select: (page) => projectOptions(page.items),
  });
  const change = (next: Partial<QueueFilters>) => {
    const merged = { ...filters, ...next };
    if (next.track !== undefined || next.status !== undefined) merged.project = next.project ?? null;
    setParams(writeFilters(merged), { replace: true });
  };
  const items = queue.data?.pages.flatMap((p) => p.items) ?? [];
  const pending = filters.status === "PENDING";
  const filtered = filters.track !== null || filters.project !== null || !pending;
  const projectChoices = [...(projects.data ?? [])];
  if (filters.project && !projectChoices.some((p) => p.value === filters.project)) {
    projectChoices.push({ value: filters.project, label: `Project (id ${filters.project})` });
  }

  return (
    <Page title="Review queue" intro="Your students' submissions, oldest first." size="lg">
      <SimpleGrid cols={{ base: 1, sm: 3 }} component="form" aria-label="Filter the queue" role="search" onSubmit={(e) => e.preventDefault()}>
        <NativeSelect
          label="Track"
          value={filters.track ?? ""}
          onChange={(e) => change({ track: (e.currentTarget.value || null) as QueueFilters["track"] })}
          data={[{ value: "", label: "All tracks" }, ...TRACKS.map((t) => ({ value: t, label: t === "DP" ? "Data Professional (DP)" : "Full-Stack Development (FSD)" }))]}
        />
        <NativeSelect
          label="Project"
          value={filters.project ?? ""}
          onChange={(e) => change({ project: e.currentTarget.value || null })}
          data={[{ value: "", label: "All projects" }, ...projectChoices]}
        />
        <NativeSelect
          label="Status"
          value={filters.status}
          onChange={(e) => change({ status: e.currentTarget.value as QueueFilters["status"] })}
          data={STATUSES.map((s) => ({ value: s, label: STATUS_WORDS[s] }))}
        />
      </SimpleGrid>
      <ErrorAlert error={queue.error} title="The queue could not be loaded" />
      {queue.isPending ? <Loading label="Loading the queue" /> : null}
      {queue.isSuccess && items.length === 0 ? (
        <Card withBorder padding="lg">
          <Stack gap="xs">
            <Text fw={600}>{pending && !filtered ? "Nothing is waiting for review." : "No submissions match these filters."}</Text>
            <Text size="sm" c="dimmed">
              {pending && !filtered ? "When one of your students submits work, it appears here." : "Try another track, project or status."}
            </Text>
            {filtered ? (
              <Anchor component={Link} to="/trainer" size="sm">
                Show everything waiting for review
              </Anchor>
            ) : null}
          </Stack>
        </Card>
      ) : null}
      {items.length ? (
        <Stack gap="sm" component="ol" aria-label="Submissions" style={{ listStyle: "none", padding: 0, margin: 0 }}>
          {items.map((item) => (
            <QueueItem key={item.id} item={item} />
          ))}
        </Stack>
      ) : null}
      {queue.hasNextPage ? (
        <Group>
          <Button variant="default" onClick={() => void queue.fetchNextPage()} loading={queue.isFetchingNextPage}>
            Show more
          </Button>
        </Group>
      ) : null}
    </Page>
  );
}

function QueueItem({ item }: { item: Queued }) {
  const waiting = item.status === "PENDING";
  return (
    <Card withBorder padding="md" component="li">
      <Group justify="space-between" align="flex-start" wrap="wrap" gap="xs">
        <Stack gap={2} style={{ minWidth: 0, flex: "1 1 16rem" }}>
          <Anchor component={Link} to={`/trainer/submissions/${item.id}`} fw={600}>
            {item.student_name}: {item.deliverable_title}
          </Anchor>
          <Text size="sm" c="dimmed">
            {item.track} · Project {item.project_number}: {item.project_title} · attempt {item.attempt}
          </Text>
          <Text size="sm" c="dimmed">
            Submitted {dateTime(item.submitted_at)}
          </Text>
        </Stack>
        <Group gap="xs">
          <StatusBadge status={item.status} />
          <Badge color={waiting ? waitedTone(item.waiting_seconds) : "gray"} variant="light" c="dark.8">
            {waiting ? `Waiting ${waitedWords(item.waiting_seconds)}` : `Waited ${waitedWords(item.waiting_seconds)}`}
          </Badge>
        </Group>
      </Group>
    </Card>
  );
}

/** Each project with submissions in the list once, in track and number order. */
export function projectOptions(items: Pick<Queued, "project_id" | "project_number" | "project_title" | "track">[]) {
  const seen = new Map<number, { value: string; label: string; order: string }>();
  for (const item of items) {
    if (seen.has(item.project_id)) continue;
    seen.set(item.project_id, {
      value: String(item.project_id),
      label: `${item.track} · Project ${item.project_number}: ${item.project_title}`,
      order: `${item.track}-${String(item.project_number).padStart(3, "0")}`,
    });
  }
  return [...seen.values()].sort((a, b) => a.order.localeCompare(b.order)).map(({ value, label }) => ({ value, label }));
}
