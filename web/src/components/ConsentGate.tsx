import { useEffect, useState } from "react";
import { Button, Checkbox, Modal, Stack, Text, Anchor } from "@mantine/core";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link } from "react-router";
import { api, onConsentRequired, unwrap } from "../api/client";
import { useProfile } from "../auth";
import { ErrorAlert } from "./ErrorAlert";

/** A blocking prompt, from any page, when the active policy or terms changed since the person
 * accepted them (the API answers 403 consent_required, or the profile says so). */
export function ConsentGate() {
  const queryClient = useQueryClient();
  const profile = useProfile();
  const [asked, setAsked] = useState(false);
  const [privacy, setPrivacy] = useState(false);
  const [terms, setTerms] = useState(false);
  useEffect(() => onConsentRequired(() => setAsked(true)), []);
  const staff = profile.data && profile.data.role !== "student";
  const needed = asked || (profile.data !== undefined && !staff && !profile.data.privacy_accepted);

  const policy = useQuery({
    queryKey: ["policy", "privacy"],
    // Past the browser's cache: the documents are public for 60 s, and the one to accept is the
    // one in force now.
    queryFn: () => unwrap(api.GET("/api/compliance/privacy-policy/", { cache: "no-cache" })),
    enabled: needed,
  });
  const termsDoc = useQuery({
    queryKey: ["policy", "terms"],
    queryFn: () => unwrap(api.GET("/api/compliance/terms/", { cache: "no-cache" })),
    enabled: needed,
  });
  // The documents are asked for again whenever the prompt opens: a version read earlier (at sign-up,
  // on the landing page) is exactly what has just been replaced, and accepting it would be refused.
  useEffect(() => {
    if (needed) void queryClient.invalidateQueries({ queryKey: ["policy"] });
  }, [needed, queryClient]);
  const fresh = policy.data && termsDoc.data && !policy.isFetching && !termsDoc.isFetching;
  const accept = useMutation({
    mutationFn: () =>
      unwrap(
        api.POST("/api/compliance/accept-consent/", {
          body: { privacy_version: policy.data!.version, terms_version: termsDoc.data!.version },
        }),
      ),
    onSuccess: () => {
      setAsked(false);
      void queryClient.invalidateQueries();
    },
  });

  return (
    <Modal
      opened={needed}
      onClose={() => {}}
      withCloseButton={false}
      closeOnClickOutside={false}
      closeOnEscape={false}
      title="Our privacy policy and terms have changed"
      centered
    >
      <Stack>
        <Text size="sm">
          To keep using ApraNova, please read and accept the current versions. You can read them in full on the{" "}
          <Anchor component={Link} to="/privacy-policy" target="_blank">
            privacy policy
          </Anchor>{" "}
          and{" "}
          <Anchor component={Link} to="/terms" target="_blank">
            terms
          </Anchor>{" "}
          pages.
        </Text>
        {policy.data ? <Text size="sm">{policy.data.summary}</Text> : null}
        <Checkbox
          checked={privacy}
          onChange={(e) => setPrivacy(e.currentTarget.checked)}
          label={`I accept the privacy policy${policy.data ? ` (version ${policy.data.version})` : ""}`}
        />
        <Checkbox
          checked={terms}
          onChange={(e) => setTerms(e.currentTarget.checked)}
          label={`I accept the terms${termsDoc.data ? ` (version ${termsDoc.data.version})` : ""}`}
        />
        <ErrorAlert error={accept.error} />
        <Button
          disabled={!privacy || !terms || !fresh}
          loading={accept.isPending}
          onClick={() => accept.mutate()}
        >
          Accept and continue
        </Button>
      </Stack>
    </Modal>
  );
}
