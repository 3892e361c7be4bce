// Prometheus metrics, one registry per gateway (tests run several in one process).
// Two sets: gateway_* (ours, by door/target/endpoint) and agones_gameserver_allocations_* under
// the names and labels agones-allocator uses, so dashboards built for Agones keep working.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Labels of agones_gameserver_allocations_duration_seconds, as Agones spells them. */
export type AgonesAllocationLabel = 'fleet_name' | 'cluster_name' | 'is_multicluster' | 'status' | 'scheduling_strategy';

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
  /** Cached Ready/Allocated GameServers per namespace, counted at scrape time (see observeCache). */
  readonly gameServers: Gauge<'namespace' | 'state'>;
  /** 1 once the local GameServer cache has synced, 0 before (and while relisting). */
  readonly cacheSynced: Gauge;
  /** Writes whose answer was lost, by how reading the object back settled them. */
  readonly lostAnswerWrites: Counter<'settled'>;
  /** Kubernetes Events written, and dropped (queue full, write failed, shutdown). */
  readonly eventsWritten: Counter;
  readonly eventsDropped: Counter<'reason'>;
  /** Agones' allocation latency histogram (agones-allocator's name, labels and buckets). */
  readonly agonesAllocationSeconds: Histogram<AgonesAllocationLabel>;
  /** Agones' histogram of the writes a local allocation took until it succeeded. */
  readonly agonesAllocationRetries: Histogram<AgonesAllocationLabel>;
  /** Lets gateway_game_servers and gateway_cache_synced read `view` at each scrape (never on the request path). */
  observeCache(view: CacheView): void;
}

export function createMetrics(opts: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'gateway_' });
  const buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
  const registers = [registry];
  let cache: CacheView | undefined;
  return {
    registry,
    allocations: new Counter({ name: 'gateway_allocations_total', help: 'Allocate calls by door, outcome and source', labelNames: ['door', 'outcome', 'source'], registers }),
    allocationSeconds: new Histogram({ name: 'gateway_allocation_duration_seconds', help: 'Allocate latency', labelNames: ['door', 'outcome'], buckets, registers }),
    inFlight: new Gauge({ name: 'gateway_allocations_in_flight', help: 'Allocate calls being served', registers }),
    remoteAttempts: new Counter({ name: 'gateway_remote_attempts_total', help: 'Attempts on remote endpoints by outcome', labelNames: ['target', 'endpoint', 'outcome'], registers }),
    remoteSeconds: new Histogram({ name: 'gateway_remote_attempt_duration_seconds', help: 'Remote attempt latency', labelNames: ['target', 'endpoint'], buckets, registers }),
    breakerState: new Gauge({ name: 'gateway_remote_breaker_state', help: 'Circuit breaker per endpoint: 0 closed, 1 half-open, 2 open', labelNames: ['target', 'endpoint'], registers }),
    tlsReloads: new Counter({ name: 'gateway_tls_reloads_total', help: 'Certificate reloads', labelNames: ['listener'], registers }),
    gameServers: new Gauge({
      name: 'gateway_game_servers',
      help: 'Cached GameServers by namespace and state (Ready, Allocated)',
      labelNames: ['namespace', 'state'],
      registers,
      collect() {
        this.reset(); // namespaces no longer served disappear
        for (const namespace of cache?.namespaces() ?? []) {
          for (const state of ['Ready', 'Allocated'] as const) this.set({ namespace, state }, cache!.count(namespace, state));
        }
      },
    }),
    cacheSynced: new Gauge({
      name: 'gateway_cache_synced',
      help: '1 when the local GameServer cache has synced, else 0',
      registers,
      collect() {
        this.set(cache?.synced ? 1 : 0);
      },
    }),
    lostAnswerWrites: new Counter({ name: 'gateway_lost_answer_writes_total', help: 'GameServer writes whose answer was lost, by how reading back settled them (unknown: may be Allocated with no caller)', labelNames: ['settled'], registers }),
    eventsWritten: new Counter({ name: 'gateway_kubernetes_events_written_total', help: 'Kubernetes Events written (created or count-patched)', registers }),
    eventsDropped: new Counter({ name: 'gateway_kubernetes_events_dropped_total', help: 'Kubernetes Events not written: queue-full (over the write budget), write-failed, shutdown', labelNames: ['reason'], registers }),
    // Buckets and labels as agones-allocator records them (pkg/gameserverallocations/metrics.go).
    agonesAllocationSeconds: new Histogram({
      name: 'agones_gameserver_allocations_duration_seconds',
      help: 'The distribution of gameserver allocation requests latencies.',
      labelNames: ['fleet_name', 'cluster_name', 'is_multicluster', 'status', 'scheduling_strategy'],
      buckets: [0, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2, 3],
      registers,
    }),
    agonesAllocationRetries: new Histogram({
      name: 'agones_gameserver_allocations_retry_total',
      help: 'The count of gameserver allocation retry until it succeeds',
      labelNames: ['fleet_name', 'cluster_name', 'is_multicluster', 'status', 'scheduling_strategy'],
      buckets: [1, 2, 3, 4, 5],
      registers,
    }),
    observeCache(view) {
      cache = view;
    },
  };
}

/** One finished Allocate call, as both metric sets see it. */
export interface AllocationObservation {
  readonly door: string;
  /** 'OK' or a Reason. */
  readonly outcome: string;
  readonly source: 'local' | 'remote' | 'none';
  readonly latencyMs: number;
  /** Decoded request fields, when the call got that far. */
  readonly scheduling?: string;
  readonly multiCluster?: boolean;
  /** The allocated GameServer's agones.dev/fleet label and the cluster that served it. */
  readonly fleet?: string;
  readonly cluster?: string;
}

/** Agones' GameServerAllocation states; every other failure is 'error', as agones-allocator records it. */
function agonesStatus(outcome: string): string {
  switch (outcome) {
    case 'OK': return 'Allocated';
    case 'NO_GAME_SERVER': return 'UnAllocated';
    case 'CONTENTION': return 'Contention';
    default: return 'error';
  }
}

/** Records one Allocate call in gateway_allocation* and agones_gameserver_allocations_duration_seconds. */
export function recordAllocation(metrics: Metrics, o: AllocationObservation): void {
  const seconds = o.latencyMs / 1000;
  metrics.allocations.inc({ door: o.door, outcome: o.outcome, source: o.source });
  metrics.allocationSeconds.observe({ door: o.door, outcome: o.outcome }, seconds);
  metrics.agonesAllocationSeconds.observe(
    {
      // 'none' where a value is unknown, as Agones does.
      fleet_name: o.fleet || 'none',
      cluster_name: o.cluster || 'none',
      is_multicluster: o.multiCluster === undefined ? 'none' : String(o.multiCluster),
      status: agonesStatus(o.outcome),
      scheduling_strategy: o.scheduling || 'none',
    },
    seconds,
  );
}

/** One allocation in this cluster, as agones_gameserver_allocations_retry_total counts it (status Success, as Agones). */
export function recordLocalAllocation(metrics: Metrics, o: { fleet: string | undefined; multiCluster: boolean; scheduling: string; writeAttempts: number }): void {
  metrics.agonesAllocationRetries.observe(
    { fleet_name: o.fleet || 'none', cluster_name: 'none', is_multicluster: String(o.multiCluster), status: 'Success', scheduling_strategy: o.scheduling },
    o.writeAttempts,
  );
}

/** What the cache gauges read at scrape time. */
export interface CacheView {
  readonly synced: boolean;
  namespaces(): Iterable<string>;
  /** GameServers in a namespace and state. */
  count(namespace: string, state: 'Ready' | 'Allocated'): number;
}
