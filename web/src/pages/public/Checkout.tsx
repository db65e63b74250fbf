import { Alert, Anchor, Button, Checkbox, List, Loader, Paper, Select, Stack, Text, TextInput, ThemeIcon } from "@mantine/core";
import { zodResolver } from "@hookform/resolvers/zod";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect } from "react";
import { Controller, useForm } from "react-hook-form";
import { Link, useNavigate, useSearchParams } from "react-router";
import { z } from "zod";
import { api, unwrap } from "../../api/client";
import { ApiError } from "../../api/errors";
import { useAuth, useProfile } from "../../auth";
import { ErrorAlert } from "../../components/ErrorAlert";
import { Loading } from "../../components/Loading";
import { Page } from "../../components/Page";
import { money } from "../../format";
import { email, placeFieldErrors } from "../../forms";
import { PolicyText } from "./Auth";
import type { components } from "../../api/schema";

type TrackCode = components["schemas"]["TrackChoice"]["track"];
import { usePolicies, useTracks } from "./tracks";

function goTo(url: string) {
  window.location.assign(url);
}

const getStartedSchema = z.object({
  track: z.string().min(1, "Choose a track."),
  name: z.string().trim().min(1, "Enter your name.").max(150),
  email,
  accept_privacy: z.literal(true, { error: "Accept the privacy policy to continue." }),
  accept_terms: z.literal(true, { error: "Accept the terms to continue." }),
});
type GetStartedForm = z.input<typeof getStartedSchema>;

/** Pay first: the account is created with the payment, the password is set afterwards. */
export function GetStarted() {
  const [params] = useSearchParams();
  const tracks = useTracks();
  const { privacy, terms } = usePolicies();
  const form = useForm<GetStartedForm>({
    resolver: zodResolver(getStartedSchema),
    defaultValues: { track: params.get("track") ?? "", name: "", email: "" },
  });
  const checkout = useMutation({
    mutationFn: (values: GetStartedForm) =>
      unwrap(
        api.POST("/api/payments/create-anonymous-checkout/", {
          body: {
            track: values.track as TrackCode,
            name: values.name,
            email: values.email,
            accept_privacy: true,
            privacy_version: privacy.data!.version,
            terms_version: terms.data!.version,
          },
        }),
      ),
    onSuccess: (session) => goTo(session.checkout_url),
    onError: (error) => placeFieldErrors(error, form.setError, ["track", "name", "email"]),
  });
  const { errors } = form.formState;
  const chosen = tracks.data?.find((t) => t.code === form.watch("track"));
  const exists = checkout.error instanceof ApiError && checkout.error.code === "account_exists";
  return (
    <Page title="Get started" size="xs" intro="Pay now and set your password afterwards: we create your account with the payment.">
      <Paper withBorder p="lg" component="form" noValidate onSubmit={form.handleSubmit((v) => checkout.mutate(v))}>
        <Stack>
          <Controller
            control={form.control}
            name="track"
            render={({ field }) => (
              <Select
                label="Track"
                placeholder="Choose a track"
                data={(tracks.data ?? []).map((t) => ({ value: t.code, label: `${t.name} — ${money(t.price_cents, t.currency)}` }))}
                value={field.value || null}
                onChange={(value) => field.onChange(value ?? "")}
                error={errors.track?.message}
                required
                allowDeselect={false}
              />
            )}
          />
          <TextInput label="Name" autoComplete="name" {...form.register("name")} error={errors.name?.message} required />
          <TextInput label="Email" type="email" autoComplete="email" {...form.register("email")} error={errors.email?.message} required />
          {privacy.data ? <PolicyText title="Privacy policy" version={privacy.data.version} content={privacy.data.content} /> : null}
          <Checkbox
            label={`I have read and accept the privacy policy${privacy.data ? ` (version ${privacy.data.version})` : ""}`}
            {...form.register("accept_privacy")}
            error={errors.accept_privacy?.message}
          />
          {terms.data ? <PolicyText title="Terms" version={terms.data.version} content={terms.data.content} /> : null}
          <Checkbox
            label={`I accept the terms${terms.data ? ` (version ${terms.data.version})` : ""}`}
            {...form.register("accept_terms")}
            error={errors.accept_terms?.message}
          />
          <ErrorAlert error={checkout.error} />
          {exists ? (
            <Anchor component={Link} to={`/login?email=${encodeURIComponent(form.getValues("email"))}&next=${encodeURIComponent(`/checkout?track=${form.getValues("track")}`)}`}>
              Sign in to buy with your account
            </Anchor>
          ) : null}
          <Button type="submit" loading={checkout.isPending} disabled={!privacy.data || !terms.data}>
            {chosen ? `Pay ${money(chosen.price_cents, chosen.currency)}` : "Continue to payment"}
          </Button>
          <Text size="xs" c="dimmed">
            You will pay on Stripe's secure page and come back here.
          </Text>
        </Stack>
      </Paper>
    </Page>
  );
}

/** A signed-in student buys a track. */
export function Checkout() {
  const [params] = useSearchParams();
  const tracks = useTracks();
  const profile = useProfile();
  const code = params.get("track") ?? profile.data?.track ?? "";
  const track = tracks.data?.find((t) => t.code === code);
  const checkout = useMutation({
    mutationFn: (trackCode: TrackCode) => unwrap(api.POST("/api/payments/create-checkout-session/", { body: { track: trackCode } })),
    onSuccess: (session) => goTo(session.checkout_url),
  });
  if (tracks.isPending || profile.isPending) return <Loading />;
  if (profile.data?.enrollment_status === "ENROLLED") {
    return (
      <Page title="You are enrolled">
        <Button component={Link} to="/dashboard">
          Go to your dashboard
        </Button>
      </Page>
    );
  }
  return (
    <Page title="Checkout" size="xs" intro="One payment gives you the whole track, its tools and trainer reviews.">
      <Paper withBorder p="lg">
        <Stack>
          {(tracks.data ?? []).map((t) => (
            <Paper key={t.code} withBorder p="md" bg={t.code === code ? "indigo.0" : undefined}>
              <Stack gap={6}>
                <Text fw={700}>{t.name}</Text>
                <Text size="sm" c="dimmed">
                  {t.weeks} weeks · {t.project_count} projects
                </Text>
                <Button onClick={() => checkout.mutate(t.code as TrackCode)} loading={checkout.isPending && checkout.variables === t.code}>
                  Pay {money(t.price_cents, t.currency)}
                </Button>
              </Stack>
            </Paper>
          ))}
          {track ? null : <Text size="sm">Choose the track you want to follow.</Text>}
          <ErrorAlert error={checkout.error} />
        </Stack>
      </Paper>
    </Page>
  );
}

type StepState = "done" | "working" | "waiting" | "failed";

function Step({ state, label }: { state: StepState; label: string }) {
  const icon =
    state === "done" ? (
      <ThemeIcon color="green" radius="xl" size={22} aria-hidden>
        ✓
      </ThemeIcon>
    ) : state === "working" ? (
      <Loader size={20} aria-hidden />
    ) : state === "failed" ? (
      <ThemeIcon color="red" radius="xl" size={22} aria-hidden>
        !
      </ThemeIcon>
    ) : (
      <ThemeIcon color="gray" variant="light" radius="xl" size={22} aria-hidden>
        ·
      </ThemeIcon>
    );
  const words = { done: "done", working: "in progress", waiting: "waiting", failed: "needs attention" }[state];
  return (
    <List.Item icon={icon}>
      <Text span fw={state === "working" ? 600 : 400}>
        {label}
      </Text>{" "}
      <Text span size="sm" c="dimmed">
        ({words})
      </Text>
    </List.Item>
  );
}

/** How often the return page asks again (one request at a time: the session, then the profile). */
const RETURN_POLL_MS = 1500;

/** Back from Stripe: follows the payment and the provisioning live, then the dashboard. The page
 * asks one question at a time: the checkout session until the enrollment is there, then the
 * profile until the tools are ready (the tools are provisioned after the enrollment), so a
 * payer's tab sends one request per tick, not two. */
export function PaymentReturn() {
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const sessionId = params.get("session_id") ?? "";
  const { signedIn, ready } = useAuth();
  const session = useQuery({
    queryKey: ["checkout-session", sessionId],
    queryFn: () => unwrap(api.GET("/api/payments/verify-session/", { params: { query: { session_id: sessionId } } })),
    enabled: sessionId !== "",
    refetchInterval: (query) => (query.state.data?.enrolled ? false : RETURN_POLL_MS),
  });
  const paid = session.data?.payment_status === "SUCCEEDED";
  const failed = ["FAILED", "EXPIRED"].includes(session.data?.payment_status ?? "");
  const enrolled = session.data?.enrolled === true;
  const profile = useProfile({ poll: enrolled ? RETURN_POLL_MS : false });
  const provisioning = profile.data?.provisioning_status;
  const toolsReady = profile.data?.tools_provisioned === true || provisioning === "SUCCEEDED";
  const done = signedIn && enrolled && toolsReady;
  useEffect(() => {
    // Enrolled now: the profile read before it is stale; ask at once rather than a tick later.
    if (enrolled) void queryClient.invalidateQueries({ queryKey: ["me"] });
  }, [enrolled, queryClient]);
  useEffect(() => {
    if (done) {
      const timer = setTimeout(() => navigate("/dashboard"), 1500);
      return () => clearTimeout(timer);
    }
  }, [done, navigate]);

  if (!sessionId) return <Page title="Payment">No payment to follow here.</Page>;
  return (
    <Page title={done ? "You are all set" : "Setting up your track"} size="sm" intro="This page updates by itself.">
      <Paper withBorder p="lg" aria-live="polite">
        <List spacing="md" center>
          <Step state={paid || enrolled ? "done" : failed ? "failed" : "working"} label="Payment confirmed" />
          <Step state={enrolled ? "done" : paid ? "working" : "waiting"} label="Enrolled in your track" />
          {signedIn ? (
            <Step
              state={toolsReady ? "done" : provisioning === "FAILED" ? "failed" : enrolled ? "working" : "waiting"}
              label="Your tools are ready"
            />
          ) : null}
        </List>
      </Paper>
      <ErrorAlert error={session.error} />
      {failed ? (
        <Alert color="red" title="The payment did not go through">
          No money was taken. <Anchor component={Link} to="/">Try again</Anchor>.
        </Alert>
      ) : null}
      {provisioning === "FAILED" ? (
        <Alert color="yellow" title="Your tools are taking longer">
          We are on it and will email you when they are ready. Your enrollment is safe.
        </Alert>
      ) : null}
      {ready && !signedIn && paid ? (
        <Alert color="green" title="Check your email">
          {session.data?.account_created
            ? "We created your account. We emailed you a code to set your password."
            : "Sign in to continue."}{" "}
          <Anchor component={Link} to="/set-password">
            Set your password
          </Anchor>
        </Alert>
      ) : null}
      {done ? (
        <Button component={Link} to="/dashboard">
          Go to your dashboard
        </Button>
      ) : null}
    </Page>
  );
}

export function PaymentCancelled() {
  return (
    <Page title="Payment cancelled" size="sm" intro="No money was taken. You can choose a track again whenever you like.">
      <Button component={Link} to="/">
        Back to the tracks
      </Button>
    </Page>
  );
}
