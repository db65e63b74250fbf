import { Button, Group, Text } from "@mantine/core";
import { Link, useParams } from "react-router";
import { useAuth } from "../../auth";
import { ErrorAlert } from "../../components/ErrorAlert";
import { Loading } from "../../components/Loading";
import { Page } from "../../components/Page";
import { money } from "../../format";
import { useTracks } from "./tracks";

export function TrackPage() {
  const { code } = useParams();
  const tracks = useTracks();
  const { signedIn } = useAuth();
  const track = tracks.data?.find((t) => t.code === code);
  if (tracks.isPending) return <Loading />;
  if (!track) return <Page title="Track not found"><ErrorAlert error={tracks.error} /></Page>;
  return (
    <Page title={track.name} intro={`${track.weeks} weeks · ${track.project_count} projects · ${money(track.price_cents, track.currency)}`}>
      <Text>{track.description}</Text>
      <Group>
        {signedIn ? (
          <Button component={Link} to={`/checkout?track=${track.code}`}>Enrol</Button>
        ) : (
          <>
            <Button component={Link} to={`/signup?track=${track.code}`}>Create account</Button>
            <Button component={Link} to={`/get-started?track=${track.code}`} variant="light">Pay first</Button>
          </>
        )}
      </Group>
    </Page>
  );
}
