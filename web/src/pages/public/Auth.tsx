import { Alert, Anchor, Box, Button, Checkbox, Paper, PasswordInput, ScrollArea, Stack, Text, TextInput } from "@mantine/core";
import { zodResolver } from "@hookform/resolvers/zod";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { useForm } from "react-hook-form";
import { Link, useNavigate, useSearchParams } from "react-router";
import { z } from "zod";
import { api, unwrap } from "../../api/client";
import { setAccessToken } from "../../api/session";
import { ApiError } from "../../api/errors";
import { useAuth } from "../../auth";
import { ErrorAlert } from "../../components/ErrorAlert";
import { Loading } from "../../components/Loading";
import { Page } from "../../components/Page";
import { date } from "../../format";
import { code, email, password, placeFieldErrors } from "../../forms";
import { usePolicies } from "./tracks";

export function PolicyText({ title, version, content }: { title: string; version: string; content: string }) {
  return (
    <Box>
      <Text fw={600} size="sm">
        {title} (version {version})
      </Text>
      <ScrollArea.Autosize mah={140} type="auto" offsetScrollbars>
        <Box tabIndex={0} aria-label={`${title} text`} p="xs" bg="gray.0" style={{ whiteSpace: "pre-wrap", fontSize: 13 }}>
          {content}
        </Box>
      </ScrollArea.Autosize>
    </Box>
  );
}

const signUpSchema = z.object({
  name: z.string().trim().min(1, "Enter your name.").max(150),
  email,
  password,
  accept_privacy: z.literal(true, { error: "Accept the privacy policy to continue." }),
  accept_terms: z.literal(true, { error: "Accept the terms to continue." }),
});
type SignUpForm = z.input<typeof signUpSchema>;

export function SignUp() {
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const { privacy, terms } = usePolicies();
  const form = useForm<SignUpForm>({ resolver: zodResolver(signUpSchema), defaultValues: { name: "", email: "", password: "" } });
  const register = useMutation({
    mutationFn: (values: SignUpForm) =>
      unwrap(
        api.POST("/api/auth/registration/", {
          body: {
            name: values.name,
            email: values.email,
            password: values.password,
            accept_privacy: true,
            privacy_version: privacy.data!.version,
            terms_version: terms.data!.version,
          },
        }),
      ),
    onSuccess: (_, values) => {
      const track = params.get("track");
      navigate(`/verify?email=${encodeURIComponent(values.email)}${track ? `&track=${track}` : ""}`);
    },
    onError: (error) => placeFieldErrors(error, form.setError, ["name", "email", "password"]),
  });
  const { errors } = form.formState;
  return (
    <Page title="Create your account" size="xs" intro="One account for your track, your tools and your projects.">
      <Paper withBorder p="lg" component="form" noValidate onSubmit={form.handleSubmit((v) => register.mutate(v))}>
        <Stack>
          <TextInput label="Name" autoComplete="name" {...form.register("name")} error={errors.name?.message} required />
          <TextInput label="Email" type="email" autoComplete="email" {...form.register("email")} error={errors.email?.message} required />
          <PasswordInput
            label="Password"
            description="At least 12 characters, with upper and lower case letters, a digit and a symbol."
            autoComplete="new-password"
            {...form.register("password")}
            error={errors.password?.message}
            required
          />
          {privacy.isPending || terms.isPending ? <Loading label="Loading the policy and terms" /> : null}
          <ErrorAlert error={privacy.error ?? terms.error} />
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
          {register.error && !(register.error instanceof ApiError && Object.keys(register.error.fields).length) ? (
            <ErrorAlert error={register.error} />
          ) : null}
          <Button type="submit" loading={register.isPending} disabled={!privacy.data || !terms.data}>
            Create account
          </Button>
          <Text size="sm">
            Already have an account?{" "}
            <Anchor component={Link} to="/login">
              Sign in
            </Anchor>
          </Text>
        </Stack>
      </Paper>
    </Page>
  );
}

const verifySchema = z.object({ email, code });
type VerifyForm = z.input<typeof verifySchema>;

export function Verify() {
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const form = useForm<VerifyForm>({
    resolver: zodResolver(verifySchema),
    defaultValues: { email: params.get("email") ?? "", code: "" },
  });
  const verify = useMutation({
    mutationFn: (values: VerifyForm) => unwrap(api.POST("/api/auth/verify-email/", { body: values })),
    onSuccess: (_, values) => {
      const track = params.get("track");
      navigate(`/login?email=${encodeURIComponent(values.email)}&verified=1${track ? `&next=${encodeURIComponent(`/checkout?track=${track}`)}` : ""}`);
    },
    onError: (error) => placeFieldErrors(error, form.setError, ["email", "code"]),
  });
  const resend = useMutation({
    mutationFn: () => unwrap(api.POST("/api/auth/resend-verification/", { body: { email: form.getValues("email") } })),
  });
  const { errors } = form.formState;
  return (
    <Page title="Check your email" size="xs" intro="We emailed you a 6-digit code. Enter it to confirm your address.">
      <Paper withBorder p="lg" component="form" noValidate onSubmit={form.handleSubmit((v) => verify.mutate(v))}>
        <Stack>
          <TextInput label="Email" type="email" autoComplete="email" {...form.register("email")} error={errors.email?.message} required />
          <TextInput
            label="Code"
            inputMode="numeric"
            autoComplete="one-time-code"
            maxLength={6}
            {...form.register("code")}
            error={errors.code?.message}
            required
          />
          <ErrorAlert error={verify.error} />
          <Button type="submit" loading={verify.isPending}>
            Confirm my email
          </Button>
          {resend.isSuccess ? (
            <Alert color="green" role="status">
              We sent a new code. It may take a minute to arrive.
            </Alert>
          ) : null}
          <ErrorAlert error={resend.error} />
          <Button variant="subtle" onClick={() => resend.mutate()} loading={resend.isPending}>
            Send me a new code
          </Button>
        </Stack>
      </Paper>
    </Page>
  );
}

const loginSchema = z.object({ email, password: z.string().min(1, "Enter your password.") });
type LoginForm = z.input<typeof loginSchema>;

export function Login() {
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const { signIn } = useAuth();
  const form = useForm<LoginForm>({
    resolver: zodResolver(loginSchema),
    defaultValues: { email: params.get("email") ?? "", password: "" },
  });
  const deletionScheduled = params.get("deletion_scheduled");
  const queryClient = useQueryClient();
  useEffect(() => {
    if (deletionScheduled) {
      setAccessToken(null); // the API ended every session when it scheduled the deletion
      queryClient.clear();
    }
  }, [deletionScheduled, queryClient]);
  const login = useMutation({
    mutationFn: (values: LoginForm) => unwrap(api.POST("/api/auth/login/", { body: values })),
    onSuccess: (result) => {
      signIn(result.access);
      const next = params.get("next");
      // Staff land on their own pages: trainers on their review queue, admins on the console.
      const home = result.user?.role === "trainer" ? "/trainer" : result.user?.role === "admin" ? "/admin" : "/dashboard";
      navigate(next && next.startsWith("/") && !next.startsWith("//") ? next : home, { replace: true });
    },
  });
  const { errors } = form.formState;
  const unverified = login.error instanceof ApiError && login.error.code === "email_not_verified";
  return (
    <Page title="Sign in" size="xs">
      {params.get("verified") ? (
        <Alert color="green" role="status">
          Your email is confirmed. Sign in to continue.
        </Alert>
      ) : null}
      {params.get("deletion_scheduled") ? (
        <Alert color="orange" role="status" title="Your account is scheduled for deletion">
          It will be erased on {date(params.get("deletion_scheduled"))}. You were signed out on every device. Changed your mind? Sign in
          and cancel the deletion in your privacy centre.
        </Alert>
      ) : null}
      {params.get("password_set") ? (
        <Alert color="green" role="status">
          Your password is set. Sign in to continue.
        </Alert>
      ) : null}
      <Paper withBorder p="lg" component="form" noValidate onSubmit={form.handleSubmit((v) => login.mutate(v))}>
        <Stack>
          <TextInput label="Email" type="email" autoComplete="email" {...form.register("email")} error={errors.email?.message} required />
          <PasswordInput label="Password" autoComplete="current-password" {...form.register("password")} error={errors.password?.message} required />
          <ErrorAlert error={login.error} title="Could not sign in" />
          {unverified ? (
            <Anchor component={Link} to={`/verify?email=${encodeURIComponent(form.getValues("email"))}`}>
              Enter your verification code
            </Anchor>
          ) : null}
          <Button type="submit" loading={login.isPending}>
            Sign in
          </Button>
          <Anchor component={Link} to="/forgot-password" size="sm">
            Forgot your password?
          </Anchor>
          <Text size="sm">
            New here?{" "}
            <Anchor component={Link} to="/signup">
              Create an account
            </Anchor>
          </Text>
        </Stack>
      </Paper>
    </Page>
  );
}

export function ForgotPassword() {
  const navigate = useNavigate();
  const form = useForm<{ email: string }>({ resolver: zodResolver(z.object({ email })), defaultValues: { email: "" } });
  const reset = useMutation({
    mutationFn: (values: { email: string }) => unwrap(api.POST("/api/auth/password/reset/", { body: values })),
    onSuccess: (_, values) => navigate(`/reset-password?email=${encodeURIComponent(values.email)}`),
  });
  return (
    <Page title="Reset your password" size="xs" intro="We will email you a code to choose a new password.">
      <Paper withBorder p="lg" component="form" noValidate onSubmit={form.handleSubmit((v) => reset.mutate(v))}>
        <Stack>
          <TextInput label="Email" type="email" autoComplete="email" {...form.register("email")} error={form.formState.errors.email?.message} required />
          <ErrorAlert error={reset.error} />
          <Button type="submit" loading={reset.isPending}>
            Email me a code
          </Button>
        </Stack>
      </Paper>
    </Page>
  );
}

const resetSchema = z.object({ email, code, new_password: password });
type ResetForm = z.input<typeof resetSchema>;

function NewPasswordForm({ submitLabel, intro, title }: { submitLabel: string; intro: string; title: string }) {
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const [resent, setResent] = useState(false);
  const form = useForm<ResetForm>({
    resolver: zodResolver(resetSchema),
    defaultValues: { email: params.get("email") ?? "", code: "", new_password: "" },
  });
  const confirm = useMutation({
    mutationFn: (values: ResetForm) => unwrap(api.POST("/api/auth/password/reset/confirm/", { body: values })),
    onSuccess: (_, values) => navigate(`/login?email=${encodeURIComponent(values.email)}&password_set=1`),
    onError: (error) => placeFieldErrors(error, form.setError, ["email", "code", "new_password"]),
  });
  const resend = useMutation({
    mutationFn: () => unwrap(api.POST("/api/auth/password/reset/", { body: { email: form.getValues("email") } })),
    onSuccess: () => setResent(true),
  });
  const { errors } = form.formState;
  return (
    <Page title={title} size="xs" intro={intro}>
      <Paper withBorder p="lg" component="form" noValidate onSubmit={form.handleSubmit((v) => confirm.mutate(v))}>
        <Stack>
          <TextInput label="Email" type="email" autoComplete="email" {...form.register("email")} error={errors.email?.message} required />
          <TextInput label="Verification code" inputMode="numeric" autoComplete="one-time-code" maxLength={6} {...form.register("code")} error={errors.code?.message} required />
          <PasswordInput
            label="New password"
            description="At least 12 characters, with upper and lower case letters, a digit and a symbol."
            autoComplete="new-password"
            {...form.register("new_password")}
            error={errors.new_password?.message}
            required
          />
          <ErrorAlert error={confirm.error} />
          <Button type="submit" loading={confirm.isPending}>
            {submitLabel}
          </Button>
          {resent ? (
            <Alert color="green" role="status">
              We sent a new code.
            </Alert>
          ) : null}
          <ErrorAlert error={resend.error} />
          <Button variant="subtle" onClick={() => resend.mutate()} loading={resend.isPending}>
            Send me a new code
          </Button>
        </Stack>
      </Paper>
    </Page>
  );
}

export function ResetPassword() {
  return <NewPasswordForm title="Choose a new password" intro="Enter the code we emailed you and your new password." submitLabel="Set new password" />;
}

export function SetPassword() {
  return (
    <NewPasswordForm
      title="Set your password"
      intro="Thank you for your payment. We emailed you a code: enter it with the password you want to use."
      submitLabel="Set my password"
    />
  );
}
