import { Anchor, Text } from "@mantine/core";
import type { ReactNode } from "react";
import { Link } from "react-router";
import { useProfile } from "../../auth";
import { ErrorAlert } from "../../components/ErrorAlert";
import { Loading } from "../../components/Loading";
import { Page } from "../../components/Page";

type Role = "student" | "trainer" | "admin";

/** A page for some roles only: anyone else sees a plain "not allowed" page (the API refuses them
 * too; this only spares them a page of errors). Used inside RequireAuth. */
export function RoleGate({ roles, children }: { roles: Role[]; children: ReactNode }) {
  const profile = useProfile();
  if (profile.isPending) return <Loading />;
  if (!profile.data) {
    return (
      <Page title="Something went wrong">
        <ErrorAlert error={profile.error} />
      </Page>
    );
  }
  if (!roles.includes(profile.data.role)) return <NotAllowed />;
  return <>{children}</>;
}

export function NotAllowed() {
  return (
    <Page title="Not allowed" intro="This page is for trainers.">
      <Text>You are signed in with an account that cannot open it. If you think you should be able to, contact support.</Text>
      <Anchor component={Link} to="/dashboard">
        Go to your dashboard
      </Anchor>
    </Page>
  );
}

export const TRAINER_ROLES: Role[] = ["trainer", "admin"];
