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
      /** Bound on one GameServer write. */
      writeTimeoutMs: Ms.default(5_000),
      /** Deadline applied when the caller sets none. */
      defaultDeadlineMs: Ms.min(1).default(30_000),
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
  log: z.strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).prefault({}),
});

/** The validated, frozen configuration. */
export type Config = z.infer<typeof ConfigSchema>;
