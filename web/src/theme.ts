import { Alert, createTheme } from "@mantine/core";

export const theme = createTheme({
  primaryColor: "indigo",
  primaryShade: { light: 7, dark: 5 },
  fontFamily: "Inter, system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
  headings: { fontFamily: "Inter, system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", fontWeight: "700" },
  defaultRadius: "md",
  components: {
    // The light alerts' coloured titles are below AA contrast on their tinted background.
    Alert: Alert.extend({ styles: { title: { color: "var(--mantine-color-dark-8)" } } }),
  },
});
