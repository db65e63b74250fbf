import { Anchor, Button, Paper, Text } from "@mantine/core";
import { Link } from "react-router";
import { ErrorAlert } from "../../components/ErrorAlert";
import { Loading } from "../../components/Loading";
import { Page } from "../../components/Page";
import { date } from "../../format";
import { usePolicies } from "./tracks";

export function PolicyPage({ kind }: { kind: "privacy" | "terms" }) {
  const policies = usePolicies();
  const doc = kind === "privacy" ? policies.privacy : policies.terms;
  const title = kind === "privacy" ? "Privacy policy" : "Terms";
  return (
    <Page title={title} intro={doc.data ? `Version ${doc.data.version}, in force since ${date(doc.data.effective_at)}` : undefined}>
      {doc.isPending ? <Loading /> : null}
      <ErrorAlert error={doc.error} />
      {doc.data ? (
        <Paper withBorder p="lg">
          <Text style={{ whiteSpace: "pre-wrap" }}>{doc.data.content}</Text>
        </Paper>
      ) : null}
    </Page>
  );
}

export function NotFound() {
  return (
    <Page title="Page not found" intro="The page you asked for does not exist.">
      <Anchor component={Link} to="/">
        <Button component="span">Back to the start</Button>
      </Anchor>
    </Page>
  );
}
