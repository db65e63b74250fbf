import { Alert } from "@mantine/core";
import { plainWords } from "../api/errors";

export function ErrorAlert({ error, title = "That did not work" }: { error: unknown; title?: string }) {
  if (!error) return null;
  return (
    <Alert color="red" variant="light" title={title} role="alert">
      {plainWords(error)}
    </Alert>
  );
}
