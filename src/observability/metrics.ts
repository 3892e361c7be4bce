// Prometheus metrics, one registry per gateway (tests run several in one process).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  readonly registry: Registry;
  /** Allocate calls by door (grpc|rest), outcome reason (OK or a Reason) and source kind. */
  readonly allocations: Counter<'door' | 'outcome' | 'source'>;
  readonly allocationSeconds: Histogram<'door' | 'outcome'>;
  readonly inFlight: Gauge;
  /** Remote attempts by target, endpoint and outcome. */
  readonly remoteAttempts: Counter<'target' | 'endpoint' | 'outcome'>;
  readonly remoteSeconds: Histogram<'target' | 'endpoint'>;
  /** 0 closed, 1 half-open, 2 open. */
  readonly breakerState: Gauge<'target' | 'endpoint'>;
  readonly tlsReloads: Counter<'listener'>;
  readonly gameServers: Gauge<'namespace' | 'state'>;
}

export function createMetrics(opts: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'gateway_' });
  const buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
  return {
    registry,
    allocations: new Counter({ name: 'gateway_allocations_total', help: 'Allocate calls by door, outcome and source', labelNames: ['door', 'outcome', 'source'], registers: [registry] }),
    allocationSeconds: new Histogram({ name: 'gateway_allocation_duration_seconds', help: 'Allocate latency', labelNames: ['door', 'outcome'], buckets, registers: [registry] }),
    inFlight: new Gauge({ name: 'gateway_allocations_in_flight', help: 'Allocate calls being served', registers: [registry] }),
    remoteAttempts: new Counter({ name: 'gateway_remote_attempts_total', help: 'Attempts on remote endpoints by outcome', labelNames: ['target', 'endpoint', 'outcome'], registers: [registry] }),
    remoteSeconds: new Histogram({ name: 'gateway_remote_attempt_duration_seconds', help: 'Remote attempt latency', labelNames: ['target', 'endpoint'], buckets, registers: [registry] }),
    breakerState: new Gauge({ name: 'gateway_remote_breaker_state', help: 'Circuit breaker per endpoint: 0 closed, 1 half-open, 2 open', labelNames: ['target', 'endpoint'], registers: [registry] }),
    tlsReloads: new Counter({ name: 'gateway_tls_reloads_total', help: 'Certificate reloads', labelNames: ['listener'], registers: [registry] }),
    gameServers: new Gauge({ name: 'gateway_game_servers', help: 'Cached allocatable GameServers', labelNames: ['namespace', 'state'], registers: [registry] }),
  };
}
