/**
 * Which metrics a Grafana dashboard reads, so tests can check every query against what Courier
 * really exports (`METRIC_NAMES` offline, a live `/metrics` end to end). Not used at runtime.
 */

const PROMQL_KEYWORDS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "inf", "nan"]);

/**
 * The metric names a PromQL expression reads, as Prometheus family names: strings, label matchers,
 * ranges, grouping lists, offsets, numbers and function calls removed; `_bucket`/`_sum`/`_count`
 * stripped. A regex reading, not a parser: enough for dashboard queries, which the tests pin.
 *
 * @example
 * ```ts
 * metricNames('histogram_quantile(0.99, sum by (le) (rate(courier_rpc_duration_seconds_bucket{instance=~"$instance"}[5m])))');
 * // → ["courier_rpc_duration_seconds"]
 * ```
 */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, " ")
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ")
    .replace(/\boffset\s+-?[0-9a-z]+/gi, " ")
    .replace(/(?<![\w:])\d+(\.\d+)?(e[+-]?\d+)?\b/gi, " ");
  const names = new Set<string>();
  for (const match of bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const word = match[0];
    // A word followed by "(" is a function or an aggregation, not a metric.
    if (/^\s*\(/.test(bare.slice(match.index + word.length))) continue;
    if (PROMQL_KEYWORDS.has(word.toLowerCase())) continue;
    names.add(word.replace(/_(bucket|sum|count)$/, ""));
  }
  return [...names];
}

interface DashboardPanel {
  title?: string;
  type?: string;
  targets?: { expr?: string }[];
  panels?: DashboardPanel[];
}

/**
 * Every `{ panel, expr, metrics }` of a dashboard JSON (rows' nested panels included), plus the
 * `label_values(<metric>, …)` template variables as panel `$variables`.
 *
 * @example
 * ```ts
 * const uses = dashboardQueries(await Bun.file("grafana/dashboards/courier.json").json());
 * const missing = uses.flatMap((u) => u.metrics).filter((m) => !exposition.includes(`# TYPE ${m} `));
 * ```
 */
export function dashboardQueries(dashboard: {
  panels?: DashboardPanel[];
  templating?: { list?: { definition?: string }[] };
}): { panel: string; expr: string; metrics: string[] }[] {
  const walk = (panels: DashboardPanel[]): DashboardPanel[] => panels.flatMap((p) => [p, ...walk(p.panels ?? [])]);
  const queries = walk(dashboard.panels ?? []).flatMap((panel) =>
    (panel.targets ?? [])
      .filter((target) => target.expr)
      .map((target) => ({ panel: panel.title ?? "", expr: target.expr!, metrics: metricNames(target.expr!) })),
  );
  for (const variable of dashboard.templating?.list ?? []) {
    const metric = variable.definition?.match(/label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,/)?.[1];
    if (metric) queries.push({ panel: "$variables", expr: variable.definition!, metrics: [metric] });
  }
  return queries;
}
