// The grpc-timeout header format ("100m", "5S"), accepted on REST calls as grpc-gateway does.
const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 0.001, n: 0.000_001 };

/** Milliseconds, or null when absent or malformed. */
export function parseGrpcTimeout(v: string | undefined): number | null {
  const m = v ? /^(\d{1,8})([HMSmun])$/.exec(v) : null;
  return m ? Number(m[1]) * UNIT_MS[m[2]!]! : null;
}
