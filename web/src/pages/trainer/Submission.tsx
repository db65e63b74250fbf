import { Alert, Anchor, Box, Button, Card, Code, Group, Image, Modal, Radio, SimpleGrid, Stack, Text, Textarea, Title } from "@mantine/core";
import { zodResolver } from "@hookform/resolvers/zod";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Controller, useForm } from "react-hook-form";
import { Link, useParams } from "react-router";
import { z } from "zod";
import { api, unwrap } from "../../api/client";
import type { components } from "../../api/schema";
import { ErrorAlert } from "../../components/ErrorAlert";
import { Loading } from "../../components/Loading";
import { Page } from "../../components/Page";
import { bytes, dateTime } from "../../format";
import { placeFieldErrors } from "../../forms";
import { StatusBadge } from "../student/status";
import { commitUrl, fileKind, waitedWords } from "./desk";
import { RoleGate, TRAINER_ROLES } from "./Gate";

type Detail = components["schemas"]["TrainerSubmissionDetail"];
type Earlier = components["schemas"]["EarlierAttempt"];
type Result = components["schemas"]["ReviewResult"];

export function Submission() {
  return (
    <RoleGate roles={TRAINER_ROLES}>
      <SubmissionPage />
    </RoleGate>
  );
}

function SubmissionPage() {
  const id = useParams().id ?? "";
  const detail = useQuery({
    queryKey: ["trainer-submission", id],
    queryFn: () => unwrap(api.GET("/api/trainer/submissions/{id}/", { params: { path: { id } } })),
    // Each opening issues (and audits) short-lived file links: not refetched behind the reader's back.
    staleTime: Infinity,
  });
  const [result, setResult] = useState<Result | null>(null);

  if (detail.isPending) return <Loading label="Loading the submission" />;
  if (!detail.data) {
    return (
      <Page title="Submission">
        <ErrorAlert error={detail.error} title="This submission could not be opened" />
        <Anchor component={Link} to="/trainer">
          Back to the review queue
        </Anchor>
      </Page>
    );
  }
  const s = detail.data;
  return (
    <Page
      title={`${s.deliverable_title}: attempt ${s.attempt}`}
      intro={`${s.student_name} · Project ${s.project_number}: ${s.project_title}`}
      size="xl"
    >
      <Anchor component={Link} to="/trainer" size="sm">
        Back to the review queue
      </Anchor>
      <Card withBorder padding="md">
        <SimpleGrid cols={{ base: 1, sm: 2, md: 4 }} spacing="sm" component="dl" m={0}>
          <Fact term="Student">
            {s.student_name}
            <br />
            <Anchor href={`mailto:${s.student_email}`} size="sm" style={{ wordBreak: "break-all" }}>
              {s.student_email}
            </Anchor>
          </Fact>
          <Fact term="Project">
            Project {s.project_number}: {s.project_title}
          </Fact>
          <Fact term="Deliverable">{s.deliverable_title}</Fact>
          <Fact term="Status">
            <Group gap="xs">
              <StatusBadge status={s.status} />
              <Text size="sm" span>
                submitted {dateTime(s.submitted_at)}
              </Text>
            </Group>
          </Fact>
        </SimpleGrid>
      </Card>

      <section aria-labelledby="attempts-heading">
        <Title order={2} id="attempts-heading" mb="sm">
          {s.earlier_attempts.length ? "This attempt and the earlier ones" : "The attempt"}
        </Title>
        <SimpleGrid cols={{ base: 1, md: s.earlier_attempts.length ? 2 : 1 }} spacing="md">
          <ThisAttempt s={s} />
          {s.earlier_attempts.length ? (
            <Stack gap="md">
              {s.earlier_attempts.map((a) => (
                <EarlierAttempt key={a.id} a={a} />
              ))}
            </Stack>
          ) : null}
        </SimpleGrid>
      </section>

      <section aria-labelledby="review-heading">
        <Title order={2} id="review-heading" mb="sm">
          Review
        </Title>
        {result ? (
          <Outcome result={result} s={s} />
        ) : s.status === "PENDING" ? (
          <ReviewForm s={s} detailId={id} onDone={setResult} />
        ) : (
          <Decided s={s} />
        )}
      </section>
    </Page>
  );
}

function Fact({ term, children }: { term: string; children: React.ReactNode }) {
  return (
    <Box>
      <Text component="dt" size="xs" c="dimmed" tt="uppercase" fw={700}>
        {term}
      </Text>
      <Text component="dd" m={0} size="sm">
        {children}
      </Text>
    </Box>
  );
}

/** What was handed in: the file shown inline (PDF, image) or offered, the link or repository at
 * its pinned commit, the text. */
function Handed({ url, sha, text }: { url: string | null; sha: string | null; text: string | null }) {
  const pinned = commitUrl(url, sha);
  return (
    <>
      {url ? (
        <Text size="sm" style={{ overflowWrap: "anywhere" }}>
          {sha ? "Repository: " : "Link: "}
          <Anchor href={url} target="_blank" rel="noopener noreferrer">
            {url}
          </Anchor>
        </Text>
      ) : null}
      {sha ? (
        <Text size="sm">
          Pinned commit:{" "}
          {pinned ? (
            <Anchor href={pinned} target="_blank" rel="noopener noreferrer">
              <Code>{sha.slice(0, 12)}</Code>
            </Anchor>
          ) : (
            <Code style={{ overflowWrap: "anywhere" }}>{sha}</Code>
          )}
        </Text>
      ) : null}
      {text ? (
        <Box p="sm" bg="gray.0" style={{ whiteSpace: "pre-wrap", overflowWrap: "anywhere", fontSize: 14 }}>
          {text}
        </Box>
      ) : null}
    </>
  );
}

function ThisAttempt({ s }: { s: Detail }) {
  const kind = fileKind(s.file_content_type);
  return (
    <Card withBorder padding="md" component="article" aria-labelledby="this-attempt">
      <Stack gap="xs">
        <Group justify="space-between">
          <Title order={3} fz="md" id="this-attempt">
            Attempt {s.attempt} (this one)
          </Title>
          <StatusBadge status={s.status} />
        </Group>
        <Text size="sm" c="dimmed">
          Submitted {dateTime(s.submitted_at)}
        </Text>
        {s.file_view_url && kind === "pdf" ? (
          <Box
            component="iframe"
            src={s.file_view_url}
            title={`${s.file_name ?? "The submitted file"} (PDF)`}
            style={{ width: "100%", height: 520, border: "1px solid var(--mantine-color-gray-4)" }}
          />
        ) : null}
        {s.file_view_url && kind === "image" ? <Image src={s.file_view_url} alt={`The submitted image, ${s.file_name ?? ""}`} fit="contain" mah={520} /> : null}
        {s.file_url ? (
          <Group gap="xs">
            <Button component="a" href={s.file_url} variant="light" size="sm">
              Download {s.file_name}
            </Button>
            <Text size="xs" c="dimmed">
              {bytes(s.file_size)} · the link works for {waitedWords(s.file_url_expires_in ?? 0)} after opening this page
            </Text>
          </Group>
        ) : null}
        <Handed url={s.submission_url} sha={s.commit_sha} text={s.submission_text} />
        {s.feedback ? (
          <Alert color={s.status === "APPROVED" ? "green" : "orange"} title="Feedback given">
            {s.feedback}
          </Alert>
        ) : null}
      </Stack>
    </Card>
  );
}

function EarlierAttempt({ a }: { a: Earlier }) {
  return (
    <Card withBorder padding="md" component="article" aria-label={`Attempt ${a.attempt}`}>
      <Stack gap="xs">
        <Group justify="space-between">
          <Title order={3} fz="md">
            Attempt {a.attempt}
          </Title>
          <StatusBadge status={a.status} />
        </Group>
        <Text size="sm" c="dimmed">
          Submitted {dateTime(a.submitted_at)}
          {a.reviewed_at ? ` · reviewed ${dateTime(a.reviewed_at)}` : ""}
        </Text>
        {a.file_name ? (
          <Text size="sm">
            File: {a.file_name} ·{" "}
            <Anchor component={Link} to={`/trainer/submissions/${a.id}`}>
              Open attempt {a.attempt}
            </Anchor>
          </Text>
        ) : null}
        <Handed url={a.submission_url} sha={a.commit_sha} text={a.submission_text} />
        {a.feedback ? (
          <Alert color={a.status === "APPROVED" ? "green" : "orange"} title="Feedback given then">
            <Text size="sm" style={{ whiteSpace: "pre-wrap" }}>
              {a.feedback}
            </Text>
          </Alert>
        ) : null}
      </Stack>
    </Card>
  );
}

export const reviewSchema = z
  .object({
    decision: z.enum(["approve", "request_changes"], { error: "Choose a decision." }),
    feedback: z.string().max(10_000, "At most 10,000 characters."),
  })
  .superRefine((value, ctx) => {
    if (value.decision === "request_changes" && !value.feedback.trim()) {
      ctx.addIssue({ code: "custom", path: ["feedback"], message: "Say what the student should change." });
    }
  });
type ReviewValues = z.input<typeof reviewSchema>;

function ReviewForm({ s, detailId, onDone }: { s: Detail; detailId: string; onDone: (result: Result) => void }) {
  const queryClient = useQueryClient();
  const form = useForm<ReviewValues>({
    resolver: zodResolver(reviewSchema),
    defaultValues: { decision: undefined as unknown as ReviewValues["decision"], feedback: "" },
  });
  const [confirming, setConfirming] = useState<ReviewValues | null>(null);
  const review = useMutation({
    mutationFn: (values: ReviewValues) =>
      unwrap(
        api.POST("/api/trainer/submissions/{id}/review/", {
          params: { path: { id: s.id } },
          body: { decision: values.decision, feedback: values.feedback.trim() || null },
        }),
      ),
    onSuccess: (result) => {
      setConfirming(null);
      // The page shows the decision at once (the detail is not fetched again: each fetch issues
      // and audits new file links).
      queryClient.setQueryData<Detail>(["trainer-submission", detailId], (old) =>
        old ? { ...old, status: result.status, feedback: result.feedback, reviewed_by: result.reviewed_by, reviewed_at: result.reviewed_at } : old,
      );
      onDone(result);
      void queryClient.invalidateQueries({ queryKey: ["trainer-queue"] });
      void queryClient.invalidateQueries({ queryKey: ["trainer-queue-projects"] });
      void queryClient.invalidateQueries({ queryKey: ["trainer-students"] });
    },
    onError: (error) => {
      if (placeFieldErrors(error, form.setError, ["feedback", "decision"])) setConfirming(null);
    },
  });
  const { errors } = form.formState;
  const approving = confirming?.decision === "approve";
  return (
    <Card withBorder padding="lg">
      <form aria-label="Review this attempt" noValidate onSubmit={form.handleSubmit((values) => setConfirming(values))}>
        <Stack>
          <Controller
            control={form.control}
            name="decision"
            render={({ field }) => (
              <Radio.Group label="Decision" value={field.value ?? null} onChange={field.onChange} error={errors.decision?.message} required>
                <Stack gap="xs" mt="xs">
                  <Radio value="approve" label="Approve" description="The deliverable is done; when the project's required deliverables are all approved, the next project unlocks." />
                  <Radio value="request_changes" label="Request changes" description="The student sees your feedback and submits again." />
                </Stack>
              </Radio.Group>
            )}
          />
          <Textarea
            label="Feedback"
            description="Required when you request changes. The student reads it on their project page and by email."
            rows={5}
            {...form.register("feedback")}
            error={errors.feedback?.message}
          />
          <Group>
            <Button type="submit">Review…</Button>
          </Group>
        </Stack>
      </form>
      <Modal
        opened={confirming !== null}
        onClose={() => (review.isPending ? undefined : setConfirming(null))}
        title={approving ? "Approve this attempt?" : "Send this attempt back?"}
        closeButtonProps={{ "aria-label": "Close" }}
        centered
      >
        <Stack>
          <Text size="sm">
            {approving
              ? `${s.student_name}'s attempt ${s.attempt} at "${s.deliverable_title}" will be approved. This cannot be undone.`
              : `${s.student_name} will be asked to change "${s.deliverable_title}" and submit it again, with your feedback.`}
          </Text>
          {confirming?.feedback.trim() ? (
            <Box p="xs" bg="gray.0" style={{ whiteSpace: "pre-wrap", fontSize: 14, overflowWrap: "anywhere" }}>
              {confirming.feedback.trim()}
            </Box>
          ) : null}
          <ErrorAlert error={review.error} title="Not reviewed" />
          <Group justify="flex-end">
            <Button variant="default" onClick={() => setConfirming(null)} disabled={review.isPending}>
              Cancel
            </Button>
            <Button loading={review.isPending} onClick={() => confirming && review.mutate(confirming)}>
              {approving ? "Approve" : "Request changes"}
            </Button>
          </Group>
        </Stack>
      </Modal>
    </Card>
  );
}

/** The review's outcome in words: what changed for the student. */
export function outcomeWords(
  result: Pick<Result, "status" | "project_status" | "unlocked_project_number" | "track_completed">,
  student: string,
): string {
  if (result.status === "CHANGES_REQUESTED") return `Changes requested — ${student} will see your feedback and can submit again.`;
  if (result.track_completed) return `Approved — ${student} has completed the track.`;
  if (result.unlocked_project_number) return `Approved — project ${result.unlocked_project_number} unlocked for ${student}.`;
  if (result.project_status === "approved") return `Approved — ${student}'s project is approved.`;
  const rest: Partial<Record<Result["project_status"], string>> = {
    submitted: "other deliverables of the project are waiting for review",
    changes_requested: "another deliverable of the project has changes requested",
    in_progress: "other deliverables of the project are still to be submitted",
  };
  return `Approved — the project is not finished yet: ${rest[result.project_status] ?? "more work is needed"}.`;
}

function Outcome({ result, s }: { result: Result; s: Detail }) {
  return (
    <Alert color={result.status === "APPROVED" ? "green" : "orange"} role="status" title="Review sent">
      <Stack gap="xs">
        <Text size="sm">{outcomeWords(result, s.student_name)}</Text>
        {result.unlocked_project_title ? (
          <Text size="sm">
            Project {result.unlocked_project_number}: {result.unlocked_project_title}
          </Text>
        ) : null}
        <Anchor component={Link} to="/trainer" size="sm">
          Back to the review queue
        </Anchor>
      </Stack>
    </Alert>
  );
}

function Decided({ s }: { s: Detail }) {
  return (
    <Text size="sm">
      {s.status === "SUPERSEDED"
        ? "The student submitted a newer attempt: review that one instead."
        : `Reviewed ${dateTime(s.reviewed_at)}. Nothing more to decide.`}
    </Text>
  );
}
