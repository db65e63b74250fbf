import { Badge, Button, Card, Code, CopyButton, Group, Progress, SimpleGrid, Stack, Table, Text, Title } from "@mantine/core";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "react-router";
import { api, unwrap } from "../../api/client";
import { useProfile } from "../../auth";
import { ErrorAlert } from "../../components/ErrorAlert";
import { Loading } from "../../components/Loading";
import { Page } from "../../components/Page";
import { dateTime } from "../../format";
import { StatusBadge } from "./status";

export function Dashboard() {
  const profile = useProfile();
  const enrolled = profile.data?.enrollment_status === "ENROLLED" || profile.data?.enrollment_status === "COMPLETED";
  // Asked for together with the profile (one round trip, not two) unless the profile already
  // says there is no enrollment: the dashboard's data is on screen within a second.
  const track = useQuery({
    queryKey: ["my-track"],
    queryFn: () => unwrap(api.GET("/api/curriculum/my-track/")),
    enabled: profile.data === undefined || enrolled,
  });
  if (profile.isPending) return <Loading label="Loading your dashboard" />;
  if (profile.error) return <Page title="Dashboard"><ErrorAlert error={profile.error} /></Page>;
  const me = profile.data!;
  if (!enrolled) {
    return (
      <Page title={`Welcome, ${me.name}`} intro="Choose a track to get your tools and start your first project.">
        <Card withBorder p="lg">
          <Stack>
            <Text>
              {me.enrollment_status === "REFUNDED"
                ? "Your payment was refunded, so your enrollment has ended."
                : "You are not enrolled yet."}
            </Text>
            <Group>
              <Button component={Link} to={`/checkout${me.track ? `?track=${me.track}` : ""}`}>
                Choose a track
              </Button>
            </Group>
          </Stack>
        </Card>
      </Page>
    );
  }
  return (
    <Page title={`Welcome back, ${me.name}`} intro={track.data ? `${track.data.name} · ${track.data.weeks} weeks` : undefined} size="lg">
      <section aria-labelledby="projects-heading">
        <Title order={2} id="projects-heading" mb="sm">
          Your projects
        </Title>
        {track.isPending ? <Loading label="Loading your projects" /> : null}
        <ErrorAlert error={track.error} />
        <SimpleGrid cols={{ base: 1, sm: 3 }}>
          {track.data?.projects.map((project) => (
            <Card key={project.id} withBorder padding="lg" component="article">
              <Stack gap="xs" h="100%">
                <Group justify="space-between" wrap="nowrap">
                  <Text size="sm" c="dimmed">
                    Project {project.number}
                  </Text>
                  <StatusBadge status={project.status} />
                </Group>
                <Title order={3} fz="lg">
                  {project.title}
                </Title>
                <Text size="sm" c="dimmed">
                  {project.subtitle}
                </Text>
                <Progress value={project.progress_percent} aria-label={`Project ${project.number} progress`} mt="auto" />
                <Text size="xs" c="dimmed">
                  {project.progress_percent}% · about {project.estimated_hours} hours
                </Text>
                {project.status === "locked" ? (
                  <Button variant="default" disabled>
                    Locked
                  </Button>
                ) : (
                  <Button component={Link} to={`/projects/${project.id}`} aria-label={`Open project ${project.number}: ${project.title}`}>
                    Open project
                  </Button>
                )}
              </Stack>
            </Card>
          ))}
        </SimpleGrid>
      </section>
      <section aria-labelledby="tools-heading">
        <Title order={2} id="tools-heading" mb="sm" mt="lg">
          Your tools
        </Title>
        {!me.tools_provisioned && me.provisioning_status !== "SUCCEEDED" ? (
          <Text c="dimmed" mb="sm" role="status">
            Your tools are being set up ({(me.provisioning_status ?? "not started").toLowerCase().replace("_", " ")}). This page updates when they are ready.
          </Text>
        ) : null}
        {me.track === "FSD" ? <Workspace /> : <DataTools />}
      </section>
    </Page>
  );
}

function ToolLink({ name, description, path }: { name: string; description: string; path: "/api/tools/jupyter-access/" | "/api/tools/prefect-access/" | "/api/tools/superset-access/" }) {
  const access = useMutation({ mutationFn: () => unwrap(api.GET(path)) });
  const data = access.data as { url?: string | null; username?: string | null; password?: string | null } | undefined;
  return (
    <Card withBorder padding="lg">
      <Stack gap="xs">
        <Title order={3} fz="md">
          {name}
        </Title>
        <Text size="sm" c="dimmed">
          {description}
        </Text>
        <ErrorAlert error={access.error} />
        {data?.url ? (
          <Stack gap={4}>
            {data.username ? <Text size="sm">User: <Code>{data.username}</Code></Text> : null}
            {data.password ? (
              <Group gap="xs">
                <Text size="sm">Password:</Text>
                <CopyButton value={data.password}>
                  {({ copied, copy }) => (
                    <Button size="compact-xs" variant="light" onClick={copy}>
                      {copied ? "Copied" : "Copy password"}
                    </Button>
                  )}
                </CopyButton>
              </Group>
            ) : null}
            <Button component="a" href={data.url} target="_blank" rel="noopener noreferrer">
              Open {name}
            </Button>
          </Stack>
        ) : (
          <Button variant="light" onClick={() => access.mutate()} loading={access.isPending}>
            Get my link to {name}
          </Button>
        )}
      </Stack>
    </Card>
  );
}

function DataTools() {
  return (
    <SimpleGrid cols={{ base: 1, sm: 2 }}>
      <DatabaseCard />
      <ToolLink name="JupyterHub" description="Notebooks for exploring and cleaning data." path="/api/tools/jupyter-access/" />
      <ToolLink name="Prefect" description="Schedule and watch your data pipelines." path="/api/tools/prefect-access/" />
      <ToolLink name="Superset" description="Dashboards on your own database." path="/api/tools/superset-access/" />
    </SimpleGrid>
  );
}

function DatabaseCard() {
  const [shown, setShown] = useState(false);
  const credentials = useQuery({
    queryKey: ["db-credentials"],
    queryFn: () => unwrap(api.GET("/api/tools/db-credentials/")),
    enabled: shown,
    staleTime: 0,
    gcTime: 0,
  });
  const c = credentials.data as (typeof credentials.data & { connection_uri?: string }) | undefined;
  return (
    <Card withBorder padding="lg">
      <Stack gap="xs">
        <Title order={3} fz="md">
          Your PostgreSQL database
        </Title>
        <Text size="sm" c="dimmed">
          A database of your own, for the projects' data.
        </Text>
        {!shown ? (
          <Button variant="light" onClick={() => setShown(true)}>
            Show my credentials
          </Button>
        ) : credentials.isPending ? (
          <Loading label="Fetching your credentials" />
        ) : (
          <>
            <ErrorAlert error={credentials.error} />
            {c ? (
              <>
                <Table fz="sm" withRowBorders={false} aria-label="Database credentials">
                  <Table.Tbody>
                    {(
                      [
                        ["Host", c.host],
                        ["Port", String(c.port)],
                        ["Database", c.dbname],
                        ["User", c.user],
                        ["Schema", c.schema],
                        ["Password", c.password],
                      ] as const
                    ).map(([label, value]) => (
                      <Table.Tr key={label}>
                        <Table.Th scope="row">{label}</Table.Th>
                        <Table.Td style={{ wordBreak: "break-all" }}>
                          <Code>{value}</Code>
                        </Table.Td>
                      </Table.Tr>
                    ))}
                  </Table.Tbody>
                </Table>
                <Group gap="xs">
                  <CopyButton value={c.password}>
                    {({ copied, copy }) => (
                      <Button size="xs" variant="light" onClick={copy}>
                        {copied ? "Password copied" : "Copy password"}
                      </Button>
                    )}
                  </CopyButton>
                  {c.connection_uri ? (
                    <CopyButton value={c.connection_uri}>
                      {({ copied, copy }) => (
                        <Button size="xs" variant="light" onClick={copy}>
                          {copied ? "URI copied" : "Copy connection URI"}
                        </Button>
                      )}
                    </CopyButton>
                  ) : null}
                  <Button size="xs" variant="subtle" onClick={() => setShown(false)}>
                    Hide
                  </Button>
                </Group>
              </>
            ) : null}
          </>
        )}
      </Stack>
    </Card>
  );
}

function Workspace() {
  const queryClient = useQueryClient();
  const access = useQuery({
    queryKey: ["workspace"],
    queryFn: () => unwrap(api.GET("/api/tools/workspace-access/")),
    refetchInterval: (query) => (["STARTING", "STOPPING", "PENDING"].includes(query.state.data?.status ?? "") ? 2000 : false),
  });
  const change = useMutation({
    mutationFn: (action: "start" | "stop") =>
      unwrap(action === "start" ? api.POST("/api/tools/workspace/start/") : api.POST("/api/tools/workspace/stop/")),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: ["workspace"] }),
  });
  const status = access.data?.status ?? "";
  const running = status === "RUNNING";
  return (
    <Card withBorder padding="lg">
      <Stack gap="xs">
        <Group justify="space-between">
          <Title order={3} fz="md">
            Your cloud workspace
          </Title>
          {access.data ? (
            <Badge color={running ? "green" : "gray"} aria-label={`Workspace ${status.toLowerCase()}`}>
              {status.toLowerCase()}
            </Badge>
          ) : null}
        </Group>
        <Text size="sm" c="dimmed">
          VS Code in the browser, with your repositories. It stops by itself when idle.
        </Text>
        {access.isPending ? <Loading label="Checking your workspace" /> : null}
        <ErrorAlert error={access.error ?? change.error} />
        {access.data?.started_at ? <Text size="sm">Started {dateTime(access.data.started_at)}</Text> : null}
        <Group>
          {running ? (
            <>
              {access.data?.url ? (
                <Button component="a" href={access.data.url} target="_blank" rel="noopener noreferrer">
                  Open workspace
                </Button>
              ) : null}
              <Button variant="default" onClick={() => change.mutate("stop")} loading={change.isPending}>
                Stop workspace
              </Button>
            </>
          ) : (
            <Button onClick={() => change.mutate("start")} loading={change.isPending} disabled={!access.data}>
              Start workspace
            </Button>
          )}
          {access.data?.password ? (
            <CopyButton value={access.data.password}>
              {({ copied, copy }) => (
                <Button variant="light" onClick={copy}>
                  {copied ? "Password copied" : "Copy workspace password"}
                </Button>
              )}
            </CopyButton>
          ) : null}
        </Group>
      </Stack>
    </Card>
  );
}
