// The gateway's one configuration object: checked once at start, then frozen.
import { z } from 'zod';

const Port = z.coerce.number().int().min(0).max(65_535);
const Ms = z.coerce.number().int().min(0);
const Bool = z.union([z.boolean(), z.enum(['true', 'false']).transform((s) => s === 'true')]);
const Listen = (port: number) => z.strictObject({ host: z.string().default('0.0.0.0'), port: Port.default(port) });

const MemoryCluster = z.strictObject({
  kind: z.literal('memory'),
  /** YAML fleet file that seeds the embedded cluster. */
  fleetFile: z.string().min(1),
});

const KubernetesCluster = z.strictObject({
  kind: z.literal('kubernetes'),
  /** kubeconfig path; absent = in-cluster service account. */
  kubeconfig: z.string().optional(),
  /** Namespaces whose GameServers are served. */
  namespaces: z.array(z.string().min(1)).min(1),
  /** Client-side write rate limit towards the API server. */
  qps: z.coerce.number().positive().default(400),
  burst: z.coerce.number().int().positive().default(500),
  /** Kubernetes Events on allocated GameServers (as agones-allocator records), written off the request path. */
  events: z
    .strictObject({
      enabled: Bool.default(true),
      /**
       * The write budget per replica: qps writes per second plus perEvent of a write per event
       * recorded (bounds events to about that share of the API server's writes under load), at
       * most burst saved. Beyond it events wait (aggregating), then drop.
       */
      qps: z.coerce.number().positive().default(2),
      perEvent: z.coerce.number().min(0).max(1).default(0.01),
      burst: z.coerce.number().int().min(1).default(20),
      /** Distinct events waiting to be written; more are dropped (counted in gateway_kubernetes_events_dropped_total). */
      maxPending: z.coerce.number().int().min(1).default(1_000),
    })
    .prefault({}),
});

const MultiCluster = z
  .strictObject({
    /**
     * Where GameServerAllocationPolicies come from: the API server, a static YAML file, or
     * nowhere (multi-cluster requests then fail with NO_POLICY). 'auto': 'file' when
     * policyFile is set, else 'kubernetes' on a Kubernetes cluster, else 'none'.
     */
    policySource: z.enum(['auto', 'kubernetes', 'file', 'none']).default('auto'),
    /** YAML file of GameServerAllocationPolicy documents (policySource 'file'); re-read on change. */
    policyFile: z.string().min(1).optional(),
    /** Folder of client secrets for the file source: <secretsDir>/<secretName>/{tls.crt,tls.key,ca.crt}. Default: secrets/ beside policyFile. */
    secretsDir: z.string().min(1).optional(),
    /**
     * Namespaces whose policies are served (policySource 'kubernetes'), watched from the start;
     * default: cluster.namespaces on Kubernetes, else ['default']. Requests in others find no policy.
     */
    namespaces: z.array(z.string().min(1)).default([]),
    /** Cap on one remote attempt (connect + call); the caller's deadline caps it further. */
    attemptTimeoutMs: Ms.min(1).default(5_000),
    /** Cap on waiting for a connection to a remote endpoint (dead or black-holed remotes). */
    connectTimeoutMs: Ms.min(1).default(1_000),
    /** No remote attempt starts with less than this left of the caller's deadline. */
    minAttemptMs: Ms.default(20),
    /** Circuit breaker per remote endpoint. */
    breaker: z
      .strictObject({
        errorThresholdPercentage: z.coerce.number().min(1).max(100).default(50),
        volumeThreshold: z.coerce.number().int().min(1).default(5),
        resetTimeoutMs: Ms.min(1).default(5_000),
        rollingCountTimeoutMs: Ms.min(100).default(10_000),
      })
      .prefault({}),
    /** How long remote capacity advertisements are cached (and how long ours may be). */
    capacityTtlMs: Ms.min(1).default(1_000),
    /** Longest wait for a remote's first capacity advertisement before calling it anyway. */
    capacityWaitMs: Ms.default(100),
    /** After RESOURCE_EXHAUSTED, skip that remote for the same selectors this long (0 = off). */
    noCapacityTtlMs: Ms.default(500),
    /** How long an idempotency key returns its allocation. */
    idempotencyRetentionMs: Ms.min(1_000).default(3_600_000),
  })
  .superRefine((m, ctx) => {
    if (m.policySource === 'file' && m.policyFile === undefined) {
      ctx.addIssue({ code: 'custom', path: ['policyFile'], message: "required when policySource is 'file'" });
    }
  });

export const ConfigSchema = z.strictObject({
  grpc: Listen(8443).prefault({}),
  rest: Listen(8444).prefault({}),
  ops: Listen(8080).prefault({}),
  tls: z.strictObject({
    certFile: z.string().min(1),
    keyFile: z.string().min(1),
    /** Directory of PEM files (*.crt, *.pem) of the CAs whose client certificates are accepted. */
    clientCaDir: z.string().min(1),
    minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
  }),
  cluster: z.discriminatedUnion('kind', [MemoryCluster, KubernetesCluster]),
  allocation: z
    .strictObject({
      /** Agones' PlayerAllocationFilter feature gate (alpha, off in Agones). */
      playerAllocationFilter: Bool.default(false),
      /** Optimistic writes tried per request before CONTENTION. */
      maxWriteAttempts: z.coerce.number().int().min(1).max(100).default(8),
      /** Bound on one GameServer write (its answer, then as long again settling it); 0 would mean none. */
      writeTimeoutMs: Ms.min(1).default(5_000),
      /** Deadline applied when the caller sets none. */
      defaultDeadlineMs: Ms.min(1).default(30_000),
      /** HTTP status for "no GameServer" (agones-allocator's HTTP_UNALLOCATED_STATUS_CODE); gRPC follows: 429 → RESOURCE_EXHAUSTED, 503 → UNAVAILABLE. */
      unallocatedStatusCode: z.coerce.number().pipe(z.literal([429, 503], { error: 'must be 429 or 503' })).default(429),
    })
    .prefault({}),
  multiCluster: MultiCluster.prefault({}),
  admission: z
    .strictObject({
      /** Allocate calls served at once across both doors; beyond it UNAVAILABLE, reason OVERLOADED (0 = no bound). */
      maxInFlight: z.coerce.number().int().min(0).default(1024),
      /** Fraction of maxInFlight (beyond it UNAVAILABLE, reason RATE_LIMITED), maxPendingRequestMiB and maxConnections one client identity may hold (1 = no per-identity bounds). */
      perClientShare: z.coerce.number().gt(0).max(1).default(0.25),
      /** Sustained Allocate calls per second per client identity; beyond it UNAVAILABLE, reason RATE_LIMITED (0 = off). */
      perClientRps: z.coerce.number().min(0).default(0),
      /** Burst above perClientRps (default: perClientRps). */
      perClientBurst: z.coerce.number().int().min(1).optional(),
      /** Client identities whose rate buckets are kept (least recently seen dropped first). */
      maxTrackedClients: z.coerce.number().int().min(1).default(10_000),
      /** gRPC: concurrent streams per HTTP/2 connection. */
      maxConcurrentStreams: z.coerce.number().int().min(1).default(128),
      /** gRPC: HTTP/2 session memory per connection (MiB) before new streams are refused; also the unfinished request bytes one connection may hold. */
      maxSessionMemoryMiB: z.coerce.number().int().min(1).default(16),
      /** gRPC: unfinished request bytes (MiB) across all connections; one client identity may hold perClientShare of it. */
      maxPendingRequestMiB: z.coerce.number().int().min(1).default(128),
      /** Open connections per door (gRPC, REST) at once, handshaking ones included; more are closed at accept. */
      maxConnections: z.coerce.number().int().min(1).default(1024),
      /** A connection that has not completed its TLS handshake by then is closed (Node's default: 120 s). */
      handshakeTimeoutMs: Ms.min(100).default(10_000),
      /** Connections per door still in their TLS handshake; more are closed at accept (keeps room for established ones). */
      maxHandshakes: z.coerce.number().int().min(1).default(256),
      /** Of those, from one peer address (IPv4 address, IPv6 /64): one address cannot hold a door's handshake slots. */
      maxHandshakesPerPeer: z.coerce.number().int().min(1).default(32),
      /** REST body / gRPC request message must arrive in full within this long of the headers (and before the call's deadline). */
      bodyTimeoutMs: Ms.min(100).default(10_000),
      /**
       * Both doors: connections older than this are closed (gRPC: GOAWAY, ±10 % jitter; REST: once idle), as are
       * those whose client certificate expires or whose CA leaves tls.clientCaDir: no connection outlives its trust.
       */
      maxConnectionAgeMs: Ms.min(1_000).default(30 * 60_000),
      /** Calls in flight on a connection past its age get this long to finish before it is cut. */
      maxConnectionAgeGraceMs: Ms.default(30_000),
      /** gRPC and REST: largest request message / body, bytes. */
      maxMessageBytes: z.coerce.number().int().min(1024).max(64 * 1024 * 1024).default(4 * 1024 * 1024),
    })
    .prefault({}),
  authorization: z
    .strictObject({
      /** open: unlisted identities may allocate anywhere (agones-allocator); enforce: unlisted identities are refused. */
      mode: z.enum(['open', 'enforce']).default('open'),
      /** Client identity ("uri:<SAN URI>", else "dns:<SAN DNS>", else "cn:<subject CN>") → what it may do. */
      clients: z
        .record(
          z.string().regex(/^(uri|dns|cn):./, 'must name the identity\'s kind: "uri:<SAN URI>", "dns:<SAN DNS>" or "cn:<subject CN>" (kinds never match each other)'),
          z.strictObject({
            /** Namespaces it may allocate in; '*' = any. */
            namespaces: z.array(z.string().min(1)).min(1),
            /** May request multi-cluster allocation (forwarding). */
            multiCluster: Bool.default(false),
          }),
        )
        .default({}),
    })
    .prefault({}),
  shutdown: z
    .strictObject({
      /** Readiness is false this long before listeners stop accepting (load balancers catch up). */
      readinessDrainMs: Ms.default(0),
      /** In-flight requests get this long to finish after listeners close. */
      graceMs: Ms.default(10_000),
    })
    .prefault({}),
  tracing: z
    .strictObject({
      /** OTLP/HTTP traces URL (e.g. http://otel-collector:4318/v1/traces); absent = tracing off, at no cost. */
      otlpEndpoint: z.url().optional(),
      /** service.name of the exported spans. */
      serviceName: z.string().min(1).default('allocator-gateway'),
      /** Share of new traces sampled; a caller's sampled flag is always followed. */
      sampleRatio: z.coerce.number().min(0).max(1).default(1),
      /** Extra headers on OTLP requests (e.g. a tracing backend's API key). */
      headers: z.record(z.string(), z.string()).default({}),
    })
    .prefault({}),
  log: z.strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).prefault({}),
});

/** The validated, frozen configuration. */
export type Config = z.infer<typeof ConfigSchema>;
