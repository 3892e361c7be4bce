// The ops port's status page: one server-rendered HTML document, no script, no build step. It
// reloads itself (meta refresh), so it works in any browser and behind any proxy; /status.json
// carries the same data for machines. Every value is escaped; nothing secret is in the snapshot.
import type { StatusSnapshot } from '../observability/status-board.ts';

export const STATUS_REFRESH_S = 5;

const esc = (v: unknown): string =>
  String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const ms = (v: number | null): string => (v === null ? '–' : v < 10 ? `${v.toFixed(1)} ms` : `${Math.round(v)} ms`);
const age = (v: number): string => (v < 1_000 ? `${Math.round(v)} ms ago` : v < 120_000 ? `${Math.round(v / 1_000)} s ago` : `${Math.round(v / 60_000)} min ago`);

type Route = StatusSnapshot['namespaces'][number]['routes'][number];

function advertised(r: Route): string {
  const a = r.advertised;
  if (a === null) return '<span class="muted">no advertisement yet</span>';
  if (a.kind === 'unimplemented') return '<span class="muted">does not advertise (agones-allocator)</span>';
  if (a.kind === 'error') return `<span class="bad">unknown: ${esc(a.message)}</span>`;
  const counts = a.ready === null ? 'namespace not advertised' : `Ready ${esc(a.ready)} · Allocated ${esc(a.allocated)}`;
  return `${counts}${a.synced ? '' : ' <span class="bad">(cache not synced)</span>'}${a.kind === 'local' ? '' : ` <span class="muted">${age(a.ageMs)}</span>`}`;
}

function endpoints(r: Route): string {
  if (r.kind === 'local') return '<tr><td colspan="5" class="muted">this cluster</td></tr>';
  return r.endpoints
    .map((e) => {
      const last = e.last.map((a) => `<span class="${a.outcome === 'allocated' || a.outcome === 'no-capacity' ? 'ok' : 'bad'}" title="${esc(a.code)} ${esc(ms(a.latencyMs))}, ${esc(age(a.ageMs))}">${esc(a.outcome)}</span>`).join(' ');
      return (
        `<tr class="endpoint" data-endpoint="${esc(e.endpoint)}" data-health="${esc(e.health)}" data-breaker="${esc(e.breaker)}">` +
        `<td><code>${esc(e.endpoint)}</code></td>` +
        `<td><span class="badge ${esc(e.health)}">${esc(e.health)}</span></td>` +
        `<td><span class="badge breaker-${esc(e.breaker)}">breaker ${esc(e.breaker)}</span></td>` +
        `<td>${ms(e.latencyMs)} <span class="muted">(${esc(e.attempts)} attempts, ${esc(e.failures)} failed)</span></td>` +
        `<td>${last || '<span class="muted">none</span>'}</td></tr>`
      );
    })
    .join('');
}

export function renderStatusPage(s: StatusSnapshot): string {
  const namespaces = s.namespaces
    .map((n) => {
      const routes = n.routes
        .map(
          (r) =>
            `<tbody class="route" data-target="${esc(r.target)}" data-kind="${r.kind}">` +
            `<tr class="target"><th colspan="2">${esc(r.target)} <span class="muted">policy ${esc(r.policy)} · priority ${esc(r.priority)} · weight ${esc(r.weight)} · namespace ${esc(r.targetNamespace)}</span></th>` +
            `<td colspan="3">capacity: <span class="capacity">${advertised(r)}</span></td></tr>${endpoints(r)}</tbody>`,
        )
        .join('');
      const problems = n.problems.map((p) => `<li class="bad">${esc(p)}</li>`).join('');
      return (
        `<section class="namespace" data-namespace="${esc(n.namespace)}"><h2>namespace ${esc(n.namespace)}</h2>` +
        `<p>local cache: Ready ${esc(n.local.ready)} · Allocated ${esc(n.local.allocated)}</p>` +
        (problems ? `<ul>${problems}</ul>` : '') +
        (routes
          ? `<table><thead><tr><th>endpoint</th><th>health</th><th>breaker</th><th>observed latency</th><th>last attempts (newest first)</th></tr></thead>${routes}</table>`
          : '<p class="muted">no multi-cluster policies: requests with multiClusterSetting.enabled fail with NO_POLICY</p>') +
        '</section>'
      );
    })
    .join('');
  const recent = s.recentAttempts
    .map((a) => `<tr><td>${age(a.ageMs)}</td><td>${esc(a.target)}</td><td><code>${esc(a.endpoint)}</code></td><td>${esc(a.namespace)}</td><td class="${a.outcome === 'allocated' || a.outcome === 'no-capacity' ? 'ok' : 'bad'}">${esc(a.outcome)}</td><td>${esc(a.code)}</td><td>${ms(a.latencyMs)}</td></tr>`)
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="${STATUS_REFRESH_S}">
<title>allocator-gateway status</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.5em}
table{border-collapse:collapse;width:100%;margin:.5em 0}td,th{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}
tr.target th{background:#f3f3f3}.muted{color:#777;font-weight:normal}.ok{color:#176d2d}.bad{color:#b00020}
.badge{border-radius:.6em;padding:0 .5em;color:#fff}.healthy,.breaker-closed{background:#1f883d}.failing,.breaker-open{background:#cf222e}
.idle{background:#888}.breaker-half-open{background:#bf8700}code{font-size:.95em}
</style></head><body>
<h1>allocator-gateway <span id="ready" class="badge ${s.ready ? 'healthy' : 'failing'}">${s.ready ? 'ready' : 'not ready'}</span></h1>
<p class="muted">generated ${esc(s.generatedAt)} · refreshes every ${STATUS_REFRESH_S} s · <a href="status.json">status.json</a> · <a href="metrics">metrics</a></p>
${namespaces || '<p class="muted">no namespace served yet</p>'}
<h2>recent remote attempts</h2>
${recent ? `<table id="recent"><thead><tr><th>when</th><th>target</th><th>endpoint</th><th>namespace</th><th>outcome</th><th>code</th><th>latency</th></tr></thead><tbody>${recent}</tbody></table>` : '<p class="muted">none yet</p>'}
</body></html>
`;
}
