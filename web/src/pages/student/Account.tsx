import { Alert, Button, Card, Group, PasswordInput, Stack, Text, TextInput, Title } from "@mantine/core";
import { zodResolver } from "@hookform/resolvers/zod";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useEffect } from "react";
import { useForm } from "react-hook-form";
import { useNavigate } from "react-router";
import { z } from "zod";
import { api, unwrap } from "../../api/client";
import { useAuth, useProfile } from "../../auth";
import { ErrorAlert } from "../../components/ErrorAlert";
import { Loading } from "../../components/Loading";
import { Page } from "../../components/Page";
import { password, placeFieldErrors } from "../../forms";

const nameSchema = z.object({ name: z.string().trim().min(1, "Enter your name.").max(150) });
const passwordSchema = z.object({ old_password: z.string().min(1, "Enter your current password."), new_password: password });

export function Account() {
  const profile = useProfile();
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const { signOut } = useAuth();
  const nameForm = useForm<{ name: string }>({ resolver: zodResolver(nameSchema), defaultValues: { name: "" } });
  const { reset } = nameForm;
  useEffect(() => {
    if (profile.data) reset({ name: profile.data.name });
  }, [profile.data, reset]);
  const rename = useMutation({
    mutationFn: (values: { name: string }) => unwrap(api.PATCH("/api/auth/user/", { body: values })),
    onSuccess: (me) => queryClient.setQueryData(["me"], me),
    onError: (error) => placeFieldErrors(error, nameForm.setError, ["name"]),
  });
  const pwForm = useForm<z.input<typeof passwordSchema>>({ resolver: zodResolver(passwordSchema), defaultValues: { old_password: "", new_password: "" } });
  const change = useMutation({
    mutationFn: (values: z.input<typeof passwordSchema>) => unwrap(api.POST("/api/auth/password/change/", { body: values })),
    onSuccess: () => pwForm.reset(),
    onError: (error) => placeFieldErrors(error, pwForm.setError, ["old_password", "new_password"]),
  });
  const leave = useMutation({ mutationFn: signOut, onSettled: () => navigate("/") });

  if (profile.isPending) return <Loading />;
  return (
    <Page title="Your account" intro={profile.data?.email}>
      <Card withBorder padding="lg" component="form" noValidate onSubmit={nameForm.handleSubmit((v) => rename.mutate(v))}>
        <Stack>
          <Title order={2} fz="lg">
            Name
          </Title>
          <TextInput label="Name" autoComplete="name" {...nameForm.register("name")} error={nameForm.formState.errors.name?.message} />
          <ErrorAlert error={rename.error} />
          {rename.isSuccess ? <Alert color="green" role="status">Saved.</Alert> : null}
          <Group>
            <Button type="submit" loading={rename.isPending}>
              Save
            </Button>
          </Group>
        </Stack>
      </Card>
      <Card withBorder padding="lg" component="form" noValidate onSubmit={pwForm.handleSubmit((v) => change.mutate(v))}>
        <Stack>
          <Title order={2} fz="lg">
            Password
          </Title>
          <PasswordInput label="Current password" autoComplete="current-password" {...pwForm.register("old_password")} error={pwForm.formState.errors.old_password?.message} />
          <PasswordInput
            label="New password"
            description="At least 12 characters, with upper and lower case letters, a digit and a symbol."
            autoComplete="new-password"
            {...pwForm.register("new_password")}
            error={pwForm.formState.errors.new_password?.message}
          />
          <ErrorAlert error={change.error} />
          {change.isSuccess ? (
            <Alert color="green" role="status">
              Password changed. Your other devices are signed out.
            </Alert>
          ) : null}
          <Group>
            <Button type="submit" loading={change.isPending}>
              Change password
            </Button>
          </Group>
        </Stack>
      </Card>
      <Card withBorder padding="lg">
        <Stack>
          <Title order={2} fz="lg">
            Sessions
          </Title>
          <Text size="sm">Signing out ends your sessions on every device: each one will ask for your password again.</Text>
          <Group>
            <Button variant="default" onClick={() => leave.mutate()} loading={leave.isPending}>
              Sign out
            </Button>
            <Button color="red" variant="light" onClick={() => leave.mutate()} loading={leave.isPending}>
              Sign out everywhere
            </Button>
          </Group>
        </Stack>
      </Card>
    </Page>
  );
}
