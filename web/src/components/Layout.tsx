import { lazy, Suspense, useEffect, useState, type ReactNode } from "react";
import { Alert, Anchor, Box, Burger, Button, Container, Group, Stack, Text } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { Link, NavLink, useNavigate } from "react-router";
import { onRetrying } from "../api/client";
import { useAuth, useProfile } from "../auth";

// Only signed-in people can be asked to accept new versions: not in the landing page's bundle.
const ConsentGate = lazy(() => import("./ConsentGate").then((m) => ({ default: m.ConsentGate })));

const STUDENT_LINKS = [
  ["/dashboard", "Dashboard"],
  ["/payments", "Payments"],
  ["/account/privacy", "Privacy"],
  ["/account", "Account"],
] as const;
// Trainers (issue 18): the review desk.
const TRAINER_LINKS = [
  ["/trainer", "Review queue"],
  ["/trainer/students", "My students"],
  ["/account", "Account"],
] as const;
// Admins (issue 18): the console's main sections; the rest are in its own navigation.
const ADMIN_LINKS = [
  ["/admin", "Overview"],
  ["/admin/users", "Users"],
  ["/admin/refunds", "Refunds"],
  ["/account", "Account"],
] as const;

export function Layout({ children }: { children: ReactNode }) {
  const { signedIn, signOut } = useAuth();
  const navigate = useNavigate();
  const [retrying, setRetrying] = useState(false);
  const [opened, { toggle, close }] = useDisclosure(false);
  useEffect(() => onRetrying(setRetrying), []);

  const role = useProfile().data?.role;
  const links = signedIn ? (
    (role === "admin" ? ADMIN_LINKS : role === "trainer" ? TRAINER_LINKS : STUDENT_LINKS).map(([to, label]) => (
      <Anchor key={to} component={NavLink} to={to} end onClick={close} c="dark" fw={500}>
        {label}
      </Anchor>
    ))
  ) : (
    <>
      <Anchor component={Link} to="/login" onClick={close} c="dark" fw={500}>
        Sign in
      </Anchor>
      <Button component={Link} to="/signup" onClick={close} size="sm">
        Create account
      </Button>
    </>
  );

  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <Box component="header" bg="white" style={{ borderBottom: "1px solid var(--mantine-color-gray-3)" }}>
        <Container size="lg" py="sm" px="md">
          <Group justify="space-between" wrap="nowrap">
            <Anchor component={Link} to={signedIn ? (role === "admin" ? "/admin" : role === "trainer" ? "/trainer" : "/dashboard") : "/"} fw={800} fz="xl" c="indigo.8" underline="never">
              ApraNova
            </Anchor>
            <Group gap="lg" visibleFrom="sm" component="nav" aria-label="Main">
              {links}
              {signedIn ? (
                <Button
                  variant="default"
                  size="sm"
                  onClick={() => void signOut().then(() => navigate("/"))}
                >
                  Sign out
                </Button>
              ) : null}
            </Group>
            <Burger opened={opened} onClick={toggle} hiddenFrom="sm" aria-label={opened ? "Close the menu" : "Open the menu"} aria-expanded={opened} aria-controls="mobile-menu" />
          </Group>
        </Container>
      </Box>
      {opened ? (
        <Box hiddenFrom="sm" bg="white" px="md" pb="md" style={{ borderBottom: "1px solid var(--mantine-color-gray-3)" }}>
          <Stack component="nav" aria-label="Menu" id="mobile-menu">
            {links}
            {signedIn ? (
              <Button variant="default" onClick={() => void signOut().then(() => navigate("/"))}>
                Sign out
              </Button>
            ) : null}
          </Stack>
        </Box>
      ) : null}
      {retrying ? (
        <Alert color="yellow" radius={0} role="status" title="Reconnecting">
          ApraNova is not answering right now. Trying again…
        </Alert>
      ) : null}
      <Box component="main" id="main" tabIndex={-1} style={{ outline: "none" }}>
        {children}
      </Box>
      <Box component="footer" py="xl" mt="xl">
        <Container size="lg">
          <Group gap="md" justify="center">
            <Anchor component={Link} to="/privacy-policy" size="sm" c="dimmed">
              Privacy policy
            </Anchor>
            <Anchor component={Link} to="/terms" size="sm" c="dimmed">
              Terms
            </Anchor>
            <Text size="sm" c="dimmed">
              © ApraNova
            </Text>
          </Group>
        </Container>
      </Box>
      {signedIn ? (
        <Suspense fallback={null}>
          <ConsentGate />
        </Suspense>
      ) : null}
    </>
  );
}
