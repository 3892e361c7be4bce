// deploy/monitoring: every metric the Grafana dashboard and the Prometheus alert rules read is
// exported by a running gateway (with samples, after traffic that falls through a dead remote to
// a healthy one), and promtool accepts the rules and every dashboard query.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { caught } from '../helpers/gateway.ts';
import { scrape } from '../helpers/prometheus.ts';
import { startFallThrough } from '../observability/fixtures.ts';
import { familyOf, metricNames } from './promql.ts';

const DIR = new URL('../../deploy/monitoring/', import.meta.url);
const dashboard = JSON.parse(readFileSync(new URL('grafana-dashboard.json', DIR), 'utf8'));
const rulesText = readFileSync(new URL('prometheus-rules.yaml', DIR), 'utf8');
const rules = parse(rulesText) as { groups: { name: string; rules: { alert: string; expr: string; labels: Record<string, string>; annotations: Record<string, string> }[] }[] };

/** Every PromQL expression of the dashboard's panels (rows included). */
function panelExprs(panels: any[]): { title: string; expr: string }[] {
  return panels.flatMap((p) => [...(p.targets ?? []).map((t: any) => ({ title: p.title, expr: t.expr as string })), ...panelExprs(p.panels ?? [])]);
}
const dashExprs = panelExprs(dashboard.panels);
const alerts = rules.groups.flatMap((g) => g.rules);
/** Metrics named by template variables (label_values(metric, label)). */
const templateMetrics = (dashboard.templating.list as any[]).flatMap((v) => [...JSON.stringify(v.query ?? '').matchAll(/label_values\((\w+)/g)].map((m) => m[1]!));

/** Counters of rare events (a lost write answer needs a crashed API server; dropped Events a full queue): exported with no sample until one happens. */
const RARE = new Set(['gateway_lost_answer_writes_total', 'gateway_kubernetes_events_dropped_total']);

/** Dashboard queries with Grafana's variables replaced, so promtool can parse them. */
const asPromQL = (expr: string) => expr.replaceAll('$__rate_interval', '5m').replaceAll('$job', '.*');

describe('deploy/monitoring', async () => {
  test('the dashboard and the rules cover what operators need', () => {
    const titles = dashExprs.map((e) => e.title).join('\n');
    for (const t of [/rate by outcome/, /rate by source/, /latency by outcome/, /Remote attempts per endpoint/, /breakers per endpoint/, /capacity per namespace/, /shedding/]) assert.match(titles, t);
    assert.deepEqual(alerts.map((a) => a.alert).sort(), [
      'AllocatorGatewayAllTargetsFailing', 'AllocatorGatewayBreakerOpen', 'AllocatorGatewayCacheNotSynced',
      'AllocatorGatewayLostAnswerWriteUnsettled', 'AllocatorGatewayLostAnswerWrites', 'AllocatorGatewayShedding',
    ]);
    for (const a of alerts) {
      assert.match(a.labels.severity ?? '', /^(warning|critical)$/, a.alert);
      assert.ok(a.annotations.summary && a.annotations.description, `${a.alert}: summary and description`);
    }
  });

  test('promtool accepts the alert rules and every dashboard query', (t) => {
    const promtool = spawnSync('promtool', ['--version']);
    if (promtool.error) {
      console.warn('!! promtool is not installed (bash test/deploy/tools.sh promtool): rules and queries NOT syntax-checked');
      t.skip('promtool not installed');
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'gw-promtool-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const dashRules = join(dir, 'dashboard-queries.yaml');
    writeFileSync(dashRules, stringify({ groups: [{ name: 'dashboard', rules: dashExprs.map((e, i) => ({ record: `dashboard:query_${i}`, expr: asPromQL(e.expr) })) }] }));
    for (const file of [new URL('prometheus-rules.yaml', DIR).pathname, dashRules]) {
      const r = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
      assert.equal(r.status, 0, `promtool check rules ${file}:\n${r.stdout}${r.stderr}`);
    }
  });

  const { front } = await startFallThrough({ after }, { frontConfig: { admission: { perClientRps: 5, perClientBurst: 8 } } });

  test('a running gateway exports every metric the dashboard and the rules read', async () => {
    const c = front.client();
    // Fall-throughs (dead remote, then the healthy one) until the dead endpoint's breaker opens,
    // then a burst past the client's rate so admission sheds.
    for (let i = 0; i < 6; i++) assert.equal((await c.allocate({ namespace: 'default', multiClusterSetting: { enabled: true } })).source.length > 0, true);
    const shed = await Promise.all(Array.from({ length: 20 }, () => caught(c.allocate({ namespace: 'default', multiClusterSetting: { enabled: true } })).catch(() => null)));
    assert.ok(shed.some((e) => e?.reason === 'RATE_LIMITED'), 'some calls were shed');
    const m = await scrape(front.opsUrl);
    const used = new Set([...dashExprs.flatMap((e) => metricNames(e.expr)), ...alerts.flatMap((a) => metricNames(a.expr)), ...templateMetrics]);
    assert.ok(used.size >= 8, `found ${[...used].join(', ')}`);
    const missing: string[] = [];
    for (const name of used) {
      const family = familyOf(name, m.families);
      if (!m.families.has(family)) missing.push(`${name} (not exported)`);
      else if (!RARE.has(family) && !m.samples.some((s) => s.name === name)) missing.push(`${name} (no sample)`);
    }
    assert.deepEqual(missing, []);
    // The signals the panels exist for are really there.
    assert.equal(m.sum('gateway_remote_breaker_state', { target: 'cluster-dead' }), 2, 'the dead endpoint is open');
    assert.ok(m.sum('gateway_remote_attempts_total', { target: 'cluster-healthy', outcome: 'allocated' }) >= 6);
    assert.ok(m.sum('gateway_allocations_total', { outcome: 'RATE_LIMITED' }) >= 1);
    assert.equal(m.sum('gateway_cache_synced'), 1);
  });
});
