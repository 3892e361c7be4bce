#!/usr/bin/env node
// Composition root: builds the gateway from configuration, wires the request path, drains on SIGTERM.
// The only module that names concrete classes.
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import type { Config } from './config/schema.ts';
import { ConfigError, loadConfig } from './config/load.ts';
import type { ClusterStore } from './cluster/store.ts';
import { MemoryStore } from './cluster/memory/memory-store.ts';
import { FleetFileError, loadFleetFile } from './cluster/memory/fleet-file.ts';
import { Engine } from './engine/engine.ts';
import { dirname, isAbsolute, resolve } from 'node:path';
import { hostname } from 'node:os';
import type { Router } from './router/router.ts';
import { PolicyRouter } from './router/policy-router.ts';
import { EmptyPolicySource, type PolicySource } from './router/policy-source.ts';
import { FilePolicySource } from './router/file-policy-source.ts';
import { CapacityCache } from './router/capacity-cache.ts';
import { gatewayServiceHandlers } from './router/gateway-service.ts';
import { IDEMPOTENCY_ANNOTATION, MemoryIdempotencyLedger, type IdempotencyLedger } from './router/idempotency.ts';
import { RemoteClient } from './remote/remote-client.ts';
import { GATEWAY_SERVICE, gatewayServiceDefinition } from './remote/gateway-proto.ts';
import { createLogger, type Logger } from './observability/logger.ts';
import { createMetrics, recordLocalAllocation, type Metrics } from './observability/metrics.ts';
import { FLEET_LABEL } from './router/capacity.ts';
import { StatusBoard, type CapacityRecord } from './observability/status-board.ts';
import { startTracing } from './observability/tracing.ts';
import { allocationEvents, type EventRecorder } from './observability/events.ts';
import type { AllocationRequest, GameServer } from './allocation/types.ts';
import { normaliseEndpoint } from './router/plan.ts';
import { targetName } from './router/policy.ts';
import type { CapacityAnswer } from './remote/remote-client.ts';
import { AllocateHandler } from './server/allocate-handler.ts';
import { GrpcServer } from './server/grpc-server.ts';
import { RestServer } from './server/rest-server.ts';
import { OpsServer } from './server/ops-server.ts';
import { Admission } from './server/admission.ts';
import { Authorizer } from './server/authorization.ts';
import { TlsError, TlsWatcher } from './server/tls.ts';

async function buildPolicySource(config: Readonly<Config>, logger: Logger): Promise<PolicySource> {
  const m = config.multiCluster;
  const kind = m.policySource !== 'auto' ? m.policySource : m.policyFile ? 'file' : config.cluster.kind === 'kubernetes' ? 'kubernetes' : 'none';
  const log = logger.child({ component: 'policies' });
  if (kind === 'file') {
    const policyFile = resolve(m.policyFile!);
    const secretsDir = m.secretsDir === undefined ? resolve(dirname(policyFile), 'secrets') : isAbsolute(m.secretsDir) ? m.secretsDir : resolve(dirname(policyFile), m.secretsDir);
    return new FilePolicySource({ policyFile, secretsDir, logger: log });
  }
  if (kind === 'kubernetes') {
    const { KubernetesPolicySource } = await import('./router/kubernetes/policy-source.ts');
    const kubeConfig = config.cluster.kind === 'kubernetes' ? (config.cluster.kubeconfig ?? 'in-cluster') : 'in-cluster';
    // Policies are served in the configured namespaces only, never in ones a request names.
    const namespaces = m.namespaces.length > 0 ? m.namespaces : config.cluster.kind === 'kubernetes' ? config.cluster.namespaces : ['default'];
    return new KubernetesPolicySource({ kubeConfig, logger: log, namespaces });
  }
  return new EmptyPolicySource();
}

async function buildLedger(config: Readonly<Config>, logger: Logger): Promise<IdempotencyLedger> {
  const holder = `${hostname()}/${process.pid}`;
  const retentionMs = config.multiCluster.idempotencyRetentionMs;
  if (config.cluster.kind !== 'kubernetes') return new MemoryIdempotencyLedger({ retentionMs, holder });
  const { KubernetesIdempotencyLedger } = await import('./router/kubernetes/idempotency-ledger.ts');
  return new KubernetesIdempotencyLedger({ kubeConfig: config.cluster.kubeconfig ?? 'in-cluster', retentionMs, holder, logger: logger.child({ component: 'idempotency' }) });
}

/** A capacity advertisement as the status page shows it: totals per namespace only. */
function capacityRecord(a: CapacityAnswer): CapacityRecord {
  if (a.kind !== 'capacity') return { kind: a.kind, synced: false, namespaces: {}, message: a.kind === 'error' ? a.message : '' };
  const namespaces: Record<string, { ready: number; allocated: number }> = {};
  for (const [ns, c] of Object.entries(a.response.namespaces ?? {})) namespaces[ns] = { ready: Number(c.total?.ready ?? 0), allocated: Number(c.total?.allocated ?? 0) };
  return { kind: 'capacity', synced: a.response.synced, namespaces, message: '' };
}

/** A running gateway. */
export interface Gateway {
  readonly grpcPort: number;
  readonly restPort: number;
  readonly opsPort: number;
  readonly engine: Engine;
  readonly store: ClusterStore;
  readonly metrics: Metrics;
  /** Readiness false, drain, close listeners and the store. */
  stop(): Promise<void>;
}

export interface StartOptions {
  readonly logger?: Logger;
  /** Use this store instead of building one from config (tests). */
  readonly store?: ClusterStore;
}

async function buildStore(config: Readonly<Config>, logger: Logger, metrics: Metrics): Promise<ClusterStore> {
  const c = config.cluster;
  if (c.kind === 'memory') return new MemoryStore(await loadFleetFile(c.fleetFile));
  // Loaded on demand: @kubernetes/client-node is heavy and the embedded cluster never needs it.
  const { KubernetesStore } = await import('./cluster/kubernetes/kubernetes-store.ts');
  return new KubernetesStore({ kubeConfig: c.kubeconfig ?? 'in-cluster', writeTimeoutMs: config.allocation.writeTimeoutMs, namespaces: c.namespaces, qps: c.qps, burst: c.burst, logger,
    onLostAnswer: (settled) => metrics.lostAnswerWrites.inc({ settled }),
  });
}

/** Kubernetes Events on allocated GameServers; none on the embedded cluster or when turned off. */
async function buildEventRecorder(config: Readonly<Config>, logger: Logger, metrics: Metrics): Promise<EventRecorder | undefined> {
  const c = config.cluster;
  if (c.kind !== 'kubernetes' || !c.events.enabled) return undefined;
  const { KubernetesEventRecorder } = await import('./observability/kubernetes/event-recorder.ts');
  return new KubernetesEventRecorder({
    kubeConfig: c.kubeconfig ?? 'in-cluster',
    qps: c.events.qps,
    perEvent: c.events.perEvent,
    burst: c.events.burst,
    maxPending: c.events.maxPending,
    logger: logger.child({ component: 'events' }),
    onWritten: (n) => metrics.eventsWritten.inc(n),
    onDropped: (reason, n) => metrics.eventsDropped.inc({ reason }, n),
  });
}

/** Starts every listener; resolves once they are bound (readiness follows the store's sync). */
export async function startGateway(config: Readonly<Config>, opts: StartOptions = {}): Promise<Gateway> {
  const logger = opts.logger ?? createLogger(config.log.level);
  const metrics = createMetrics();
  const t = config.tracing;
  const tracing = t.otlpEndpoint ? await startTracing({ otlpEndpoint: t.otlpEndpoint, serviceName: t.serviceName, sampleRatio: t.sampleRatio, headers: t.headers }) : undefined;
  if (config.tls.minVersion === 'TLSv1.3') tls.DEFAULT_MIN_VERSION = 'TLSv1.3';
  const tlsWatcher = new TlsWatcher(config.tls, {
    pollMs: 1_000,
    onError: (err) => logger.error({ err: err.message }, 'certificate reload failed; keeping the previous certificates'),
    onReload: () => {
      metrics.tlsReloads.inc({ listener: 'server' });
      logger.info('server certificates reloaded');
    },
  });
  const store = opts.store ?? (await buildStore(config, logger, metrics));
  const events = await buildEventRecorder(config, logger, metrics);
  const engine = new Engine(store, {
    playerAllocationFilter: config.allocation.playerAllocationFilter,
    maxWriteAttempts: config.allocation.maxWriteAttempts,
    writeTimeoutMs: config.allocation.writeTimeoutMs,
    indexedAnnotations: [IDEMPOTENCY_ANNOTATION],
    logger: logger.child({ component: 'engine' }),
    onAllocated: (written: GameServer, req: AllocationRequest, writeAttempts: number) => {
      recordLocalAllocation(metrics, { fleet: written.labels[FLEET_LABEL], multiCluster: req.multiClusterSetting.enabled, scheduling: req.scheduling, writeAttempts });
      if (events) for (const e of allocationEvents(written, req)) events.record(e);
    },
  });
  // Namespaces whose GameServers this gateway serves: the configured ones on Kubernetes; on the
  // embedded cluster, those its fleet holds. Caller-named namespaces outside them get no state.
  const servedNamespaces = config.cluster.kind === 'kubernetes' ? new Set(config.cluster.namespaces) : null;
  const servesGameServers = (namespace: string): boolean => servedNamespaces?.has(namespace) ?? engine.index.namespaces().includes(namespace);
  const localCount = (namespace: string, state: 'Ready' | 'Allocated'): number => {
    let n = 0;
    for (const gs of engine.index.all(namespace, state)) if (!gs.deleting) n++;
    return n;
  };
  metrics.observeCache({
    get synced() {
      return engine.ready;
    },
    // Served namespaces stay in the gauge at 0 once empty.
    namespaces: () => new Set([...(servedNamespaces ?? []), ...engine.index.namespaces()]),
    count: localCount,
  });
  const statusBoard = new StatusBoard();
  const mc = config.multiCluster;
  const policySource = await buildPolicySource(config, logger);
  const ledger = await buildLedger(config, logger);
  const remoteLog = logger.child({ component: 'remote' });
  const remote = new RemoteClient({
    attemptTimeoutMs: mc.attemptTimeoutMs,
    connectTimeoutMs: mc.connectTimeoutMs,
    minAttemptMs: mc.minAttemptMs,
    breaker: mc.breaker,
    onBreakerState: (target, endpoint, state, openedBy) => {
      metrics.breakerState.set({ target, endpoint }, state === 'closed' ? 0 : state === 'half-open' ? 1 : 2);
      if (state === 'open') remoteLog.warn({ target, endpoint, breaker: state, openedBy }, 'circuit breaker opened: endpoint skipped until it recovers');
      else remoteLog.info({ target, endpoint, breaker: state }, 'circuit breaker state changed');
    },
    onChannelRebuild: (endpoint) => remoteLog.info({ endpoint }, 'client certificate or CA changed; remote channel rebuilt'),
  });
  const capacity = new CapacityCache({
    ttlMs: mc.capacityTtlMs,
    noCapacityTtlMs: mc.noCapacityTtlMs,
    fetchTimeoutMs: Math.max(mc.capacityWaitMs, 1),
    fetch: async (target, namespaces, timeoutMs) => {
      const answer = await remote.capacity(target, namespaces, timeoutMs);
      statusBoard.recordCapacity(target.endpoints.join(','), capacityRecord(answer));
      return answer;
    },
  });
  const authorizer = new Authorizer(config.authorization);
  const policyRouter = new PolicyRouter({
    engine,
    keepsState: (namespace) => servedNamespaces === null || servedNamespaces.has(namespace) || policySource.serves(namespace),
    mayUse: (identity, namespace) => authorizer.mayUse(identity, namespace),
    policies: policySource,
    remote,
    capacity,
    ledger,
    logger: logger.child({ component: 'router' }),
    metrics,
    statusBoard,
    capacityWaitMs: mc.capacityWaitMs,
  });
  const router: Router = policyRouter;
  const decode = { playerAllocationFilter: config.allocation.playerAllocationFilter };
  const adm = config.admission;
  const MiB = 1024 * 1024;
  const admission = new Admission({
    maxInFlight: adm.maxInFlight,
    perClientShare: adm.perClientShare,
    perClientRps: adm.perClientRps,
    ...(adm.perClientBurst !== undefined ? { perClientBurst: adm.perClientBurst } : {}),
    maxTrackedClients: adm.maxTrackedClients,
  });
  const socketLimits = { maxConnections: adm.maxConnections, handshakeTimeoutMs: adm.handshakeTimeoutMs, maxHandshakes: adm.maxHandshakes, maxHandshakesPerPeer: adm.maxHandshakesPerPeer,
    maxConnectionsPerClient: adm.perClientShare < 1 ? Math.max(1, Math.floor(adm.maxConnections * adm.perClientShare)) : Infinity,
  };
  const handler = new AllocateHandler({
    router,
    decode,
    logger: logger.child({ component: 'allocate' }),
    metrics,
    admission,
    authorizer,
    unallocatedStatus: config.allocation.unallocatedStatusCode,
  });
  let draining = false;
  const grpcServer = new GrpcServer({
    host: config.grpc.host,
    port: config.grpc.port,
    tls: tlsWatcher,
    handler,
    defaultDeadlineMs: config.allocation.defaultDeadlineMs,
    maxReceiveMessageBytes: adm.maxMessageBytes,
    maxConcurrentStreams: adm.maxConcurrentStreams,
    maxSessionMemoryMiB: adm.maxSessionMemoryMiB,
    maxConnectionAgeMs: adm.maxConnectionAgeMs,
    maxConnectionAgeGraceMs: adm.maxConnectionAgeGraceMs,
    admission,
    authorizer,
    socketLimits,
    receiveLimits: {
      perConnectionBytes: adm.maxSessionMemoryMiB * MiB,
      totalBytes: adm.maxPendingRequestMiB * MiB,
      perClientBytes: Math.max(adm.maxMessageBytes, Math.floor(adm.maxPendingRequestMiB * MiB * adm.perClientShare)),
      timeoutMs: adm.bodyTimeoutMs,
    },
    extraServices: [
      {
        name: GATEWAY_SERVICE,
        definition: gatewayServiceDefinition,
        handlers: gatewayServiceHandlers({
          engine,
          explain: (req, identity, key, signal) => policyRouter.explain(req, identity, key, signal),
          decode,
          capacityTtlMs: mc.capacityTtlMs,
          serves: servesGameServers,
          mayUse: (identity, namespace) => authorizer.mayUse(identity, namespace),
          authorize: (identity, namespace, multiCluster) => authorizer.check(identity, namespace, multiCluster),
        }),
      },
    ],
  });
  const restServer = new RestServer({
    host: config.rest.host,
    port: config.rest.port,
    tls: tlsWatcher,
    minVersion: config.tls.minVersion,
    handler,
    defaultDeadlineMs: config.allocation.defaultDeadlineMs,
    maxBodyBytes: adm.maxMessageBytes,
    bodyTimeoutMs: adm.bodyTimeoutMs,
    maxConnectionAgeMs: adm.maxConnectionAgeMs,
    maxConnectionAgeGraceMs: adm.maxConnectionAgeGraceMs,
    socketLimits,
    documents: { '/openapi.yaml': ['application/yaml', readFileSync(new URL('../proto/allocation/openapi.yaml', import.meta.url))] },
  });
  // Load balancers probe with bare TCP; such handshake failures are not worth more than debug.
  restServer.onTlsError((err) => logger.debug({ err: err.message }, 'TLS handshake failed'));
  const opsServer = new OpsServer({
    host: config.ops.host,
    port: config.ops.port,
    registry: metrics.registry,
    ready: () => engine.ready && !draining,
    status: () =>
      statusBoard.snapshot({
        namespaces: [...new Set([...(servedNamespaces ?? []), ...mc.namespaces, ...engine.index.namespaces(), ...statusBoard.namespaces()])].sort(),
        routes: async (namespace) => {
          const { policies, problems } = await policySource.policies(namespace, AbortSignal.timeout(1_000));
          return {
            // No secret name or CA: the page is for anyone who can reach the ops port.
            routes: policies.map((p) => ({
              policy: p.name, clusterName: p.clusterName, priority: p.priority, weight: p.weight, targetNamespace: p.targetNamespace, target: targetName(p),
              endpoints: (p.allocationEndpoints ?? []).map(normaliseEndpoint).filter((e): e is string => e !== null),
            })),
            problems: problems.map((x) => `${x.namespace}/${x.name}: ${x.problems.join('; ')}`),
          };
        },
        breakerState: (endpoint) => remote.endpointBreakerState(endpoint),
        localCapacity: (namespace) => ({ ready: localCount(namespace, 'Ready'), allocated: localCount(namespace, 'Allocated') }),
        ready: engine.ready && !draining,
      }),
  });

  const [grpcPort, restPort, opsPort] = await Promise.all([grpcServer.listen(), restServer.listen(), opsServer.listen()]);
  engine.start().then(
    () => {
      grpcServer.setServing(true);
      logger.info({ gameServers: engine.index.size }, 'cluster cache synced; serving');
    },
    (err: unknown) => logger.error({ err }, 'cluster store failed to start'),
  );
  logger.info({ grpcPort, restPort, opsPort, cluster: config.cluster.kind }, 'gateway listening');

  return {
    grpcPort,
    restPort,
    opsPort,
    engine,
    store,
    metrics,
    async stop() {
      draining = true;
      grpcServer.setServing(false);
      logger.info({ readinessDrainMs: config.shutdown.readinessDrainMs }, 'draining: readiness is false');
      await new Promise((r) => setTimeout(r, config.shutdown.readinessDrainMs));
      await Promise.all([grpcServer.close(config.shutdown.graceMs), restServer.close(config.shutdown.graceMs)]);
      tlsWatcher.close();
      remote.close();
      await Promise.all([policySource.close(), ledger.close(), events?.close()]);
      await engine.close();
      await opsServer.close();
      await tracing?.shutdown(); // exports what is buffered
      logger.info('stopped');
    },
  };
}

async function main(): Promise<void> {
  let config: Readonly<Config>;
  try {
    config = loadConfig(process.argv.slice(2));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`allocator-gateway: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config.log.level);
  let gateway: Gateway;
  try {
    gateway = await startGateway(config, { logger });
  } catch (err) {
    if (err instanceof TlsError || err instanceof FleetFileError) {
      process.stderr.write(`allocator-gateway: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    gateway.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

if (import.meta.main) await main();
