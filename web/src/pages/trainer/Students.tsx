import { Anchor, Badge, Button, Card, Group, NativeSelect, Progress, SimpleGrid, Stack, Text } from "@mantine/core";
import { useInfiniteQuery } from "@tanstack/react-query";
import { Link, useSearchParams } from "react-router";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { ErrorAlert } from "../../components/ErrorAlert";
import { Loading } from "../../components/Loading";
import { Page } from "../../components/Page";
import { dateTime } from "../../format";
import { StatusBadge } from "../student/status";
import { ago, TRACKS, type TrackCode } from "./desk";
import { RoleGate, TRAINER_ROLES } from "./Gate";

type Student = components["schemas"]["TrainerStudent"];

export function Students() {
  return (
    <RoleGate roles={TRAINER_ROLES}>
      <StudentsPage />
    </RoleGate>
  );
}

function StudentsPage() {
  const [params, setParams] = useSearchParams();
  const raw = params.get("track");
  const track = (TRACKS as readonly string[]).includes(raw ?? "") ? (raw as TrackCode) : null;
  const students = useInfiniteQuery({
    queryKey: ["trainer-students", track],
    queryFn: ({ pageParam }) =>
      unwrap(api.GET("/api/trainer/students/", { params: { query: { track: track ?? undefined, cursor: pageParam ?? undefined, limit: 50 } } })),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor ?? null,
  });
  const items = students.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <Page title="My students" intro="Each student's track, where they are, and what waits for you." size="lg">
      <SimpleGrid cols={{ base: 1, sm: 3 }} component="form" role="search" aria-label="Filter students" onSubmit={(e) => e.preventDefault()}>
        <NativeSelect
          label="Track"
          value={track ?? ""}
          onChange={(e) => setParams(e.currentTarget.value ? { track: e.currentTarget.value } : {}, { replace: true })}
          data={[{ value: "", label: "All tracks" }, ...TRACKS.map((t) => ({ value: t, label: t }))]}
        />
      </SimpleGrid>
      <ErrorAlert error={students.error} title="Your students could not be loaded" />
      {students.isPending ? <Loading label="Loading your students" /> : null}
      {students.isSuccess && items.length === 0 ? (
        <Card withBorder padding="lg">
          <Text fw={600}>{track ? `No students of yours in ${track}.` : "No students are assigned to you yet."}</Text>
          <Text size="sm" c="dimmed">
            Students are assigned to a trainer of their track when they enrol.
          </Text>
        </Card>
      ) : null}
      {items.length ? (
        <SimpleGrid cols={{ base: 1, md: 2 }} spacing="md" component="ul" aria-label="Students" style={{ listStyle: "none", padding: 0, margin: 0 }}>
          {items.map((student) => (
            <StudentCard key={student.id} student={student} />
          ))}
        </SimpleGrid>
      ) : null}
      {students.hasNextPage ? (
        <Group>
          <Button variant="default" onClick={() => void students.fetchNextPage()} loading={students.isFetchingNextPage}>
            Show more
          </Button>
        </Group>
      ) : null}
    </Page>
  );
}

function StudentCard({ student: s }: { student: Student }) {
  const p = s.progress;
  return (
    <Card withBorder padding="md" component="li" aria-label={s.name}>
      <Stack gap={6}>
        <Group justify="space-between" wrap="wrap" gap="xs">
          <Text fw={700}>{s.name}</Text>
          <Group gap="xs">
            {s.track ? <Badge variant="outline">{s.track}</Badge> : null}
            {s.waiting_submissions ? (
              <Badge color="yellow" variant="light" c="dark.8">
                {s.waiting_submissions} waiting for review
              </Badge>
            ) : null}
          </Group>
        </Group>
        <Anchor href={`mailto:${s.email}`} size="sm" style={{ overflowWrap: "anywhere" }}>
          {s.email}
        </Anchor>
        <Text size="sm">
          {s.enrollment_status === "COMPLETED"
            ? `Completed the track ${dateTime(s.completed_at)}`
            : s.current_project
              ? `Project ${s.current_project.number}: ${s.current_project.title}`
              : "No project open yet"}{" "}
          {s.current_project && s.enrollment_status !== "COMPLETED" ? <StatusBadge status={s.current_project.status} /> : null}
        </Text>
        <Progress value={p.projects_percent} aria-label={`${s.name}: projects approved`} size="md" />
        <Text size="sm" c="dimmed">
          {p.projects_approved} of {p.projects_total} projects approved · {p.steps_completed} of {p.steps_total} steps done ({p.steps_percent}%)
        </Text>
        <Text size="sm" c="dimmed">
          Last active {ago(s.last_activity_at)}
          {s.last_activity_at ? ` (${dateTime(s.last_activity_at)})` : ""}
        </Text>
        {s.waiting_submissions ? (
          <Anchor component={Link} to={s.track ? `/trainer?track=${s.track}` : "/trainer"} size="sm">
            Open the queue{s.track ? ` for ${s.track}` : ""}
          </Anchor>
        ) : null}
        {s.enrollment_status !== "ENROLLED" && s.enrollment_status !== "COMPLETED" ? (
          <Text size="sm" c="orange.9">
            Enrollment: {s.enrollment_status.toLowerCase().replaceAll("_", " ")}
          </Text>
        ) : null}
      </Stack>
    </Card>
  );
}
