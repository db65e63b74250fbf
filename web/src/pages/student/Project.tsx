import { Alert, Anchor, Badge, Button, Card, Checkbox, FileInput, Group, List, Paper, Progress, Stack, Text, Textarea, TextInput, Title } from "@mantine/core";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useParams } from "react-router";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { ErrorAlert } from "../../components/ErrorAlert";
import { Loading } from "../../components/Loading";
import { Page } from "../../components/Page";
import { bytes, dateTime } from "../../format";
import { StatusBadge } from "./status";
import { uploadToS3 } from "./upload";

type Deliverable = components["schemas"]["ProjectDeliverable"];
type Submission = components["schemas"]["Submission"];

export function Project() {
  const id = Number(useParams().id);
  const queryClient = useQueryClient();
  const project = useQuery({
    queryKey: ["project", id],
    queryFn: () => unwrap(api.GET("/api/curriculum/projects/{id}/", { params: { path: { id } } })),
  });
  const submissions = useQuery({
    queryKey: ["my-submissions"],
    queryFn: async () => (await unwrap(api.GET("/api/curriculum/my-submissions/", { params: { query: { limit: 100 } } }))).items,
  });
  const refresh = () => {
    void queryClient.invalidateQueries({ queryKey: ["project", id] });
    void queryClient.invalidateQueries({ queryKey: ["my-submissions"] });
    void queryClient.invalidateQueries({ queryKey: ["my-track"] });
  };
  const start = useMutation({
    mutationFn: () => unwrap(api.POST("/api/curriculum/projects/{id}/start/", { params: { path: { id } }, body: {} })),
    onSuccess: refresh,
  });
  const step = useMutation({
    mutationFn: ({ stepId, done }: { stepId: number; done: boolean }) => {
      const params = { path: { id, step_id: stepId } };
      return unwrap(
        done
          ? api.POST("/api/curriculum/projects/{id}/steps/{step_id}/complete/", { params, body: {} })
          : api.DELETE("/api/curriculum/projects/{id}/steps/{step_id}/complete/", { params, body: {} }),
      );
    },
    onSuccess: refresh,
  });
  const dataset = useMutation({
    mutationFn: () => unwrap(api.GET("/api/curriculum/projects/{id}/dataset/", { params: { path: { id } } })),
  });

  if (project.isPending) return <Loading label="Loading the project" />;
  if (!project.data) return <Page title="Project"><ErrorAlert error={project.error} /></Page>;
  const p = project.data;
  const canWork = !["locked", "unlocked"].includes(p.status);
  return (
    <Page title={`Project ${p.number}: ${p.title}`} intro={p.subtitle} size="lg">
      <Group>
        <StatusBadge status={p.status} />
        <Text size="sm" c="dimmed">
          About {p.estimated_hours} hours · {p.tech_stack.join(", ")}
        </Text>
        <Anchor component={Link} to="/dashboard" size="sm">
          Back to the dashboard
        </Anchor>
      </Group>
      <Progress value={p.progress_percent} aria-label="Project progress" size="lg" />
      <Text size="sm">{p.progress_percent}% done</Text>
      <Text style={{ whiteSpace: "pre-wrap" }}>{p.description}</Text>
      {p.status === "unlocked" ? (
        <Paper withBorder p="md">
          <Group justify="space-between">
            <Text>Ready when you are.</Text>
            <Button onClick={() => start.mutate()} loading={start.isPending}>
              Start this project
            </Button>
          </Group>
          <ErrorAlert error={start.error} />
        </Paper>
      ) : null}
      {p.has_dataset ? (
        <Paper withBorder p="md">
          <Group justify="space-between">
            <Text>The project's dataset</Text>
            {dataset.data ? (
              <Button component="a" href={dataset.data.url} download={dataset.data.filename}>
                Download {dataset.data.filename}
              </Button>
            ) : (
              <Button variant="light" onClick={() => dataset.mutate()} loading={dataset.isPending}>
                Get the dataset
              </Button>
            )}
          </Group>
          <ErrorAlert error={dataset.error} />
        </Paper>
      ) : null}
      <section aria-labelledby="steps-heading">
        <Title order={2} id="steps-heading" mb="sm">
          Steps
        </Title>
        <ErrorAlert error={step.error} />
        <Stack gap="sm">
          {p.steps.map((s) => (
            <Card key={s.id} withBorder padding="md">
              <Checkbox
                checked={s.completed}
                disabled={!canWork || step.isPending}
                onChange={(e) => step.mutate({ stepId: s.id, done: e.currentTarget.checked })}
                label={
                  <Text fw={600} span>
                    {s.number}. {s.title}
                    {s.is_optional ? " (optional)" : ""}
                  </Text>
                }
                description={`${s.description} · about ${s.minutes} minutes`}
              />
              {s.resources.length ? (
                <List size="sm" mt="xs" ml="xl">
                  {s.resources.map((r, i) =>
                    r.url ? (
                      <List.Item key={i}>
                        <Anchor href={r.url} target="_blank" rel="noopener noreferrer">
                          {r.title ?? r.url}
                        </Anchor>
                      </List.Item>
                    ) : null,
                  )}
                </List>
              ) : null}
            </Card>
          ))}
        </Stack>
      </section>
      <section aria-labelledby="deliverables-heading">
        <Title order={2} id="deliverables-heading" mb="sm">
          Deliverables
        </Title>
        <Stack>
          {p.deliverables.map((d) => (
            <DeliverableCard
              key={d.id}
              deliverable={d}
              canSubmit={canWork && p.status !== "approved"}
              attempts={(submissions.data ?? []).filter((s) => s.deliverable_id === d.id)}
              onSubmitted={refresh}
            />
          ))}
        </Stack>
      </section>
    </Page>
  );
}

function DeliverableCard({
  deliverable: d,
  canSubmit,
  attempts,
  onSubmitted,
}: {
  deliverable: Deliverable;
  canSubmit: boolean;
  attempts: Submission[];
  onSubmitted: () => void;
}) {
  const approved = d.latest_submission?.status === "APPROVED";
  return (
    <Card withBorder padding="lg" component="article">
      <Stack gap="xs">
        <Group justify="space-between">
          <Title order={3} fz="md">
            {d.title}
          </Title>
          <Group gap="xs">
            {d.is_required ? <Badge variant="outline">Required</Badge> : <Badge variant="outline" color="gray">Optional</Badge>}
            {d.latest_submission ? <StatusBadge status={d.latest_submission.status} /> : null}
          </Group>
        </Group>
        <Text size="sm" c="dimmed">
          {d.description}
        </Text>
        {d.latest_submission?.feedback ? (
          <Alert color={approved ? "green" : "orange"} title="Your trainer's feedback">
            {d.latest_submission.feedback}
          </Alert>
        ) : null}
        {canSubmit && !approved ? <SubmissionForm deliverable={d} onSubmitted={onSubmitted} /> : null}
        {attempts.length ? (
          <Stack gap={4}>
            <Text fw={600} size="sm">
              Your attempts
            </Text>
            {attempts.map((a) => (
              <Paper key={a.id} withBorder p="xs">
                <Group justify="space-between">
                  <Text size="sm">
                    Attempt {a.attempt} · {dateTime(a.submitted_at)}
                    {a.file_name ? ` · ${a.file_name} (${bytes(a.file_size)})` : ""}
                    {a.submission_url ? ` · ${a.submission_url}` : ""}
                    {a.commit_sha ? ` @ ${a.commit_sha.slice(0, 7)}` : ""}
                  </Text>
                  <StatusBadge status={a.status} />
                </Group>
                {a.feedback ? (
                  <Text size="sm" mt={4}>
                    Feedback: {a.feedback}
                  </Text>
                ) : null}
              </Paper>
            ))}
          </Stack>
        ) : null}
      </Stack>
    </Card>
  );
}

function SubmissionForm({ deliverable: d, onSubmitted }: { deliverable: Deliverable; onSubmitted: () => void }) {
  const [file, setFile] = useState<File | null>(null);
  const [url, setUrl] = useState("");
  const [commit, setCommit] = useState("");
  const [text, setText] = useState("");
  const [progress, setProgress] = useState<number | null>(null);
  const submit = useMutation({
    mutationFn: async () => {
      let fileKey: string | undefined;
      if (d.deliverable_type === "FILE") {
        if (!file) throw new Error("Choose a file first.");
        const target = await unwrap(
          api.POST("/api/curriculum/submissions/upload-url/", {
            body: { deliverable_id: d.id, filename: file.name, content_type: file.type || "application/octet-stream", size: file.size },
          }),
        );
        setProgress(0);
        await uploadToS3(target, file, setProgress);
        fileKey = target.key;
      }
      return unwrap(
        api.POST("/api/curriculum/submissions/", {
          body: {
            deliverable_id: d.id,
            file_key: fileKey ?? null,
            submission_url: ["LINK", "GITHUB"].includes(d.deliverable_type) ? url.trim() : null,
            commit_sha: d.deliverable_type === "GITHUB" && commit.trim() ? commit.trim() : null,
            submission_text: d.deliverable_type === "TEXT" ? text : null,
          },
        }),
      );
    },
    onSuccess: () => {
      setFile(null);
      setProgress(null);
      onSubmitted();
    },
    onError: () => setProgress(null),
  });
  const label = `Submit ${d.title}`;
  return (
    <Stack
      gap="xs"
      component="form"
      aria-label={label}
      onSubmit={(e) => {
        e.preventDefault();
        submit.mutate();
      }}
    >
      {d.deliverable_type === "FILE" ? (
        <FileInput
          label="File"
          description={`Accepted: ${d.accepted_content_types.join(", ") || "any"}${d.max_file_bytes ? ` · up to ${bytes(d.max_file_bytes)}` : ""}`}
          placeholder="Choose a file"
          value={file}
          onChange={setFile}
          accept={d.accepted_content_types.join(",") || undefined}
          clearable
        />
      ) : null}
      {d.deliverable_type === "LINK" || d.deliverable_type === "GITHUB" ? (
        <TextInput
          label={d.deliverable_type === "GITHUB" ? "Repository URL" : "Link"}
          type="url"
          value={url}
          onChange={(e) => setUrl(e.currentTarget.value)}
          required
        />
      ) : null}
      {d.deliverable_type === "GITHUB" ? (
        <TextInput label="Commit (optional: the latest when empty)" value={commit} onChange={(e) => setCommit(e.currentTarget.value)} />
      ) : null}
      {d.deliverable_type === "TEXT" ? (
        <Textarea label="Your answer" autosize minRows={4} value={text} onChange={(e) => setText(e.currentTarget.value)} required />
      ) : null}
      {progress !== null ? <Progress value={progress} aria-label="Upload progress" striped animated /> : null}
      {submit.error ? (
        <Alert color="red" role="alert" title="Not submitted">
          {submit.error instanceof Error ? submit.error.message : String(submit.error)}
        </Alert>
      ) : null}
      {submit.isSuccess ? (
        <Alert color="green" role="status">
          Submitted. Your trainer will review it.
        </Alert>
      ) : null}
      <Group>
        <Button type="submit" loading={submit.isPending}>
          {d.latest_submission ? "Submit again" : "Submit"}
        </Button>
      </Group>
    </Stack>
  );
}
