import { useEffect, type ReactNode } from "react";
import { Container, Stack, Title, Text } from "@mantine/core";

/** A page's heading and document title (each page has one h1 and its own title). */
export function Page({
  title,
  intro,
  size = "md",
  children,
}: {
  title: string;
  intro?: ReactNode;
  size?: "xs" | "sm" | "md" | "lg" | "xl";
  children: ReactNode;
}) {
  useEffect(() => {
    document.title = `${title} · ApraNova`;
  }, [title]);
  return (
    <Container size={size} py="xl" px="md">
      <Stack gap="lg">
        <Stack gap={4}>
          <Title order={1}>{title}</Title>
          {intro ? <Text c="dimmed">{intro}</Text> : null}
        </Stack>
        {children}
      </Stack>
    </Container>
  );
}
