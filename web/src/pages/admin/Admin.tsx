import { lazy, Suspense } from "react";
import { Anchor, Box, Container, Group } from "@mantine/core";
import { NavLink, Route, Routes, useLocation } from "react-router";
import { useProfile } from "../../auth";
import { ErrorAlert } from "../../components/ErrorAlert";
import { Loading } from "../../components/Loading";
import { Page } from "../../components/Page";

// The admin console: one lazy chunk for the area, and the overview's charts (the chart library)
// in their own, so the user and money pages do not wait for them.
const Overview = lazy(() => import("./Overview").then((m) => ({ default: m.Overview })));
const users = () => import("./Users");
const Users = lazy(() => users().then((m) => ({ default: m.Users })));
const User = lazy(() => users().then((m) => ({ default: m.User })));
const money = () => import("./Money");
const Payments = lazy(() => money().then((m) => ({ default: m.Payments })));
const Refunds = lazy(() => money().then((m) => ({ default: m.Refunds })));
const governance = () => import("./Governance");
const Submissions = lazy(() => governance().then((m) => ({ default: m.Submissions })));
const AuditLog = lazy(() => governance().then((m) => ({ default: m.AuditLog })));
const Policies = lazy(() => governance().then((m) => ({ default: m.Policies })));
const Retention = lazy(() => governance().then((m) => ({ default: m.Retention })));

export const ADMIN_SECTIONS = [
  ["/admin", "Overview"],
  ["/admin/users", "Users"],
  ["/admin/payments", "Payments"],
  ["/admin/refunds", "Refunds"],
  ["/admin/submissions", "Submissions"],
  ["/admin/audit", "Audit log"],
  ["/admin/policies", "Policies"],
  ["/admin/retention", "Retention"],
] as const;

/** Only admins: everyone else sees a plain "not allowed" page (the API refuses them anyway). */
export function AdminArea() {
  const profile = useProfile();
  const { pathname } = useLocation();
  // The section being shown, marked (bold, underlined) as well as announced (aria-current).
  const current = (to: string) => (to === "/admin" ? pathname === "/admin" || pathname === "/admin/" : pathname.startsWith(to));
  if (profile.isPending) return <Loading label="Checking your access" />;
  if (profile.error) {
    return (
      <Page title="Admin">
        <ErrorAlert error={profile.error} />
      </Page>
    );
  }
  if (profile.data?.role !== "admin") return <NotAllowed />;
  return (
    <>
      <Box bg="white" style={{ borderBottom: "1px solid var(--mantine-color-gray-3)" }}>
        <Container size="xl" px="md" py={6}>
          <Group component="nav" aria-label="Admin" gap="md" style={{ overflowX: "auto" }} wrap="wrap">
            {ADMIN_SECTIONS.map(([to, label]) => (
              <Anchor
                key={to}
                component={NavLink}
                to={to}
                end={to === "/admin"}
                size="sm"
                fw={current(to) ? 700 : 500}
                underline={current(to) ? "always" : "hover"}
                c="dark"
              >
                {label}
              </Anchor>
            ))}
          </Group>
        </Container>
      </Box>
      <Suspense fallback={<Loading />}>
        <Routes>
          <Route index element={<Overview />} />
          <Route path="users" element={<Users />} />
          <Route path="users/:id" element={<User />} />
          <Route path="payments" element={<Payments />} />
          <Route path="refunds" element={<Refunds />} />
          <Route path="submissions" element={<Submissions />} />
          <Route path="audit" element={<AuditLog />} />
          <Route path="policies" element={<Policies />} />
          <Route path="retention" element={<Retention />} />
          <Route path="*" element={<Page title="Page not found" intro="There is no such admin page." children={null} />} />
        </Routes>
      </Suspense>
    </>
  );
}

export function NotAllowed() {
  return <Page title="Not allowed" intro="This part of ApraNova is for administrators. Your account does not have access to it." children={null} />;
}
