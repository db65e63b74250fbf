import "@mantine/charts/styles.css";
import { BarChart, LineChart } from "@mantine/charts";
import { Alert, Card, Group, SegmentedControl, SimpleGrid, Stack, Text, TextInput, Title } from "@mantine/core";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useMemo, useState, type ReactNode } from "react";
import { api, unwrap } from "../../api/client";
import { ErrorAlert } from "../../components/ErrorAlert";
import { Loading } from "../../components/Loading";
import { Page } from "../../components/Page";
import { money } from "../../format";
import {
  defaultRange,
  duration,
  enrollmentsByTrack,
  provisioningOutcomes,
  rangeProblem,
  refundOutcomes,
  revenueByTrack,
  reviewTimes,
  totals,
  type Bucket,
  type Row,
} from "./chartData";
import { statusWords } from "./shared";

const TRACK_COLORS = ["indigo.6", "teal.6", "orange.6", "grape.6", "cyan.6", "pink.6"];
const OUTCOME_COLORS: Record<string, string> = {
  SUCCEEDED: "teal.6",
  FAILED: "red.6",
  IN_PROGRESS: "blue.5",
  DEPROVISIONED: "gray.6",
};

export function Overview() {
  const [bucket, setBucket] = useState<Bucket>("day");
  const [range, setRange] = useState(() => defaultRange(new Date(), "day"));
  const problem = rangeProblem(range.from, range.to, bucket);
  const stats = useQuery({
    queryKey: ["admin-stats", range.from, range.to, bucket],
    queryFn: () => unwrap(api.GET("/api/admin/stats/", { params: { query: { from: range.from, to: range.to, bucket } } })),
    enabled: problem === null,
    placeholderData: keepPreviousData,
  });
  const series = stats.data?.series ?? null;
  const shaped = useMemo(
    () =>
      series && {
        revenue: revenueByTrack(series),
        enrollments: enrollmentsByTrack(series),
        provisioning: provisioningOutcomes(series),
        reviews: reviewTimes(series),
        refunds: refundOutcomes(series),
        totals: totals(series),
      },
    [series],
  );

  return (
    <Page title="Overview" intro="How ApraNova is doing: money, enrollments, tools, reviews and refunds." size="xl">
      <Group align="flex-end" wrap="wrap" gap="md" component="form" aria-label="Time range" onSubmit={(e) => e.preventDefault()}>
        <TextInput type="date" label="From" value={range.from} max={range.to} onChange={(e) => setRange({ ...range, from: e.currentTarget.value })} />
        <TextInput type="date" label="To" value={range.to} min={range.from} onChange={(e) => setRange({ ...range, to: e.currentTarget.value })} />
        <Stack gap={4}>
          <Text size="sm" fw={500} id="bucket-label">
            Group by
          </Text>
          <SegmentedControl
            aria-labelledby="bucket-label"
            value={bucket}
            onChange={(value) => {
              const next = value as Bucket;
              setBucket(next);
              setRange(defaultRange(new Date(), next));
            }}
            data={[
              { value: "day", label: "Day" },
              { value: "week", label: "Week" },
            ]}
          />
        </Stack>
      </Group>
      {problem ? (
        <Alert color="orange" role="alert" title="Check the dates">
          {problem}
        </Alert>
      ) : null}
      <ErrorAlert error={stats.error} />
      {stats.isPending && problem === null ? <Loading label="Loading the numbers" /> : null}
      {stats.data ? (
        <SimpleGrid cols={{ base: 2, md: 4 }} spacing="sm">
          <Figure label="Net revenue in range">
            {shaped?.totals.netCents.length ? shaped.totals.netCents.map((t) => money(t.cents, t.currency)).join(" · ") : money(0, "usd")}
          </Figure>
          <Figure label="New enrollments in range">{shaped?.totals.enrollments ?? 0}</Figure>
          <Figure label="Waiting for review now" note={stats.data.oldest_pending_at ? `oldest since ${new Date(stats.data.oldest_pending_at).toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" })}` : "none waiting"}>
            {stats.data.review_queue}
          </Figure>
          <Figure label="Median review turnaround" note={`p90 ${duration(stats.data.review_turnaround.p90_seconds)} · ${stats.data.review_turnaround.decided} decided`}>
            {duration(stats.data.review_turnaround.median_seconds)}
          </Figure>
          <Figure label="Tools set up in range" note={`${shaped?.totals.toolsFailed ?? 0} failed`}>
            {shaped?.totals.toolsReady ?? 0}
          </Figure>
          <Figure label="Refunds asked in range" note={`${shaped?.totals.refundsApproved ?? 0} approved`}>
            {shaped?.totals.refundsRequested ?? 0}
          </Figure>
          <Figure label="Students without a trainer">{stats.data.students_without_trainer}</Figure>
          <Figure label="Submissions in range">{shaped?.totals.submissions ?? 0}</Figure>
        </SimpleGrid>
      ) : null}
      {shaped ? (
        <SimpleGrid cols={{ base: 1, md: 2 }} spacing="lg">
          <ChartCard title="Revenue per track" caption={`Paid minus refunded${shaped.revenue.currency ? `, in ${shaped.revenue.currency}` : ""}, by the day of payment.`} rows={shaped.revenue.rows}>
            <BarChart
              h={240}
              data={shaped.revenue.rows}
              dataKey="label"
              type="stacked"
              series={shaped.revenue.keys.map((name, i) => ({ name, color: TRACK_COLORS[i % TRACK_COLORS.length]! }))}
              valueFormatter={(v) => (shaped.revenue.currency ? money(Math.round(v * 100), shaped.revenue.currency) : v.toFixed(2))}
              withLegend
              tickLine="y"
            />
          </ChartCard>
          <ChartCard title="Enrollments per track" caption="New enrollments, by the day they began." rows={shaped.enrollments.rows}>
            <BarChart
              h={240}
              data={shaped.enrollments.rows}
              dataKey="label"
              type="stacked"
              series={shaped.enrollments.keys.map((name, i) => ({ name, color: TRACK_COLORS[i % TRACK_COLORS.length]! }))}
              withLegend
              tickLine="y"
              yAxisProps={{ allowDecimals: false }}
            />
          </ChartCard>
          <ChartCard title="Provisioning outcomes" caption="Tools by the state they reached, all tools together." rows={shaped.provisioning.rows}>
            <BarChart
              h={240}
              data={shaped.provisioning.rows}
              dataKey="label"
              type="stacked"
              series={shaped.provisioning.keys.map((name) => ({ name, label: statusWords("tool", name), color: OUTCOME_COLORS[name] ?? "yellow.6" }))}
              withLegend
              tickLine="y"
              yAxisProps={{ allowDecimals: false }}
            />
          </ChartCard>
          <ChartCard title="Review waiting time and turnaround" caption="Hours: how long submissions waited, and how long reviews took to decide." rows={shaped.reviews.rows}>
            <LineChart
              h={240}
              data={shaped.reviews.rows}
              dataKey="label"
              unit=" h"
              series={[
                { name: "Median wait", color: "orange.6" },
                { name: "Median turnaround", color: "indigo.6" },
                { name: "90% decided within", color: "gray.6", strokeDasharray: "5 5" },
              ]}
              connectNulls={false}
              withLegend
              tickLine="y"
            />
          </ChartCard>
          <ChartCard title="Refunds" caption="Refund requests by outcome, by the day they were asked." rows={shaped.refunds.rows}>
            <BarChart
              h={240}
              data={shaped.refunds.rows}
              dataKey="label"
              type="stacked"
              series={[
                { name: "Approved", color: "grape.6" },
                { name: "Rejected", color: "red.6" },
                { name: "Pending", color: "yellow.6" },
                { name: "Failed", color: "gray.7" },
              ]}
              withLegend
              tickLine="y"
              yAxisProps={{ allowDecimals: false }}
            />
          </ChartCard>
          <Card withBorder padding="lg">
            <Title order={2} fz="h4" mb="xs">
              Revenue and enrollments, all time
            </Title>
            <Stack gap={4}>
              {stats.data?.revenue.map((r) => (
                <Text size="sm" key={`${r.track}-${r.currency}`}>
                  {r.track}: {r.payments} payments, {money(r.net_cents, r.currency)} net ({money(r.refunded_cents, r.currency)} refunded)
                </Text>
              ))}
              {stats.data?.enrollments
                .filter((e) => e.status === "ENROLLED" || e.status === "COMPLETED")
                .map((e) => (
                  <Text size="sm" key={`${e.track}-${e.status}`}>
                    {e.track ?? "No track"}: {e.count} {statusWords("enrollment", e.status).toLowerCase()}
                  </Text>
                ))}
            </Stack>
          </Card>
        </SimpleGrid>
      ) : null}
    </Page>
  );
}

function Figure({ label, note, children }: { label: string; note?: string; children: ReactNode }) {
  return (
    <Card withBorder padding="md">
      <Text size="sm" c="dimmed">
        {label}
      </Text>
      <Text fz="xl" fw={700}>
        {children}
      </Text>
      {note ? (
        <Text size="xs" c="dimmed">
          {note}
        </Text>
      ) : null}
    </Card>
  );
}

/** A chart with its heading and what it shows; an empty range says so instead of a flat line. */
function ChartCard({ title, caption, rows, children }: { title: string; caption: string; rows: Row[]; children: ReactNode }) {
  const empty = rows.every((row) => Object.entries(row).every(([key, value]) => key === "bucket" || key === "label" || !value));
  return (
    <Card withBorder padding="lg" component="section" aria-label={title}>
      <Title order={2} fz="h4">
        {title}
      </Title>
      <Text size="sm" c="dimmed" mb="sm">
        {caption}
      </Text>
      {empty ? (
        <Text size="sm" c="dimmed">
          Nothing in this range.
        </Text>
      ) : (
        children
      )}
    </Card>
  );
}
