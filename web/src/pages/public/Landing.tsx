import { Badge, Box, Button, Card, Container, Group, SimpleGrid, Stack, Text, Title } from "@mantine/core";
import { useEffect } from "react";
import { Link } from "react-router";
import { useAuth } from "../../auth";
import { ErrorAlert } from "../../components/ErrorAlert";
import { Loading } from "../../components/Loading";
import { money } from "../../format";
import { useTracks } from "./tracks";

const HIGHLIGHTS: Record<string, string[]> = {
  DP: ["Your own PostgreSQL database", "JupyterHub notebooks", "Prefect pipelines", "Superset dashboards"],
  FSD: ["A cloud workspace (VS Code in the browser)", "Git repositories you own", "Code reviewed by a trainer"],
};

export function Landing() {
  const tracks = useTracks();
  const { signedIn } = useAuth();
  useEffect(() => {
    document.title = "ApraNova · Learn by building real projects";
  }, []);
  return (
    <>
      <Box className="hero" py={64}>
        <Container size="lg" px="md">
          <Stack gap="md" maw={680}>
            <Title order={1} c="white" fz={{ base: 32, sm: 44 }}>
              Learn engineering by building three real projects
            </Title>
            <Text fz="lg" c="indigo.0">
              Pick a track, get your own professional tools on day one, and have every deliverable reviewed by a
              trainer.
            </Text>
            <Group>
              <Button component="a" href="#tracks" size="md" variant="white" color="indigo">
                See the tracks
              </Button>
              {!signedIn ? (
                <Button component={Link} to="/login" size="md" variant="outline" color="white">
                  Sign in
                </Button>
              ) : null}
            </Group>
          </Stack>
        </Container>
      </Box>
      <Container size="lg" py="xl" px="md" id="tracks">
        <Title order={2} mb="lg">
          Two tracks
        </Title>
        {tracks.isPending ? <Loading label="Loading the tracks" /> : null}
        <ErrorAlert error={tracks.error} title="The tracks could not be loaded" />
        <SimpleGrid cols={{ base: 1, sm: 2 }} spacing="lg">
          {tracks.data?.map((track) => (
            <Card key={track.code} withBorder shadow="sm" padding="lg" component="article">
              <Stack gap="sm" h="100%">
                <Group justify="space-between" align="flex-start">
                  <Title order={3}>{track.name}</Title>
                  <Badge variant="light">{track.weeks} weeks</Badge>
                </Group>
                <Text c="dimmed">{track.description}</Text>
                <Stack gap={4} component="ul" style={{ paddingLeft: 18, margin: 0 }}>
                  {(HIGHLIGHTS[track.code] ?? []).map((item) => (
                    <Text component="li" key={item} size="sm">
                      {item}
                    </Text>
                  ))}
                  <Text component="li" size="sm">
                    {track.project_count} guided projects
                  </Text>
                </Stack>
                <Text fz={28} fw={800} mt="auto">
                  {money(track.price_cents, track.currency)}
                  <Text span size="sm" c="dimmed" fw={400}>
                    {" "}
                    one payment
                  </Text>
                </Text>
                <Group grow>
                  {signedIn ? (
                    <Button component={Link} to={`/checkout?track=${track.code}`} aria-label={`Enrol in ${track.name}`}>
                      Enrol
                    </Button>
                  ) : (
                    <>
                      <Button component={Link} to={`/signup?track=${track.code}`} aria-label={`Create an account for ${track.name}`}>
                        Create account
                      </Button>
                      <Button
                        component={Link}
                        to={`/get-started?track=${track.code}`}
                        variant="light"
                        aria-label={`Pay first for ${track.name}`}
                      >
                        Pay first
                      </Button>
                    </>
                  )}
                </Group>
                <Button component={Link} to={`/tracks/${track.code}`} variant="subtle" size="xs">
                  More about {track.name}
                </Button>
              </Stack>
            </Card>
          ))}
        </SimpleGrid>
      </Container>
    </>
  );
}
