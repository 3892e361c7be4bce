// agones.dev/last-allocated as Agones writes it: Go's time.Now().MarshalText(), i.e. RFC 3339 with
// nanoseconds and trailing zeros dropped ("2026-12-01T05:22:13.123456789Z"). Date has milliseconds
// only; the monotonic clock supplies the rest, anchored on a millisecond edge of the wall clock and
// re-anchored when the two drift a millisecond apart (the wall clock was set).

const NS_PER_MS = 1_000_000n;
let anchorWallNs = 0n;
let anchorMonoNs = 0n;

/** Anchors on the start of a wall-clock millisecond (waits at most 1 ms, only on first use and after a clock jump). */
function anchor(): void {
  const first = Date.now();
  let wall = first;
  while (wall === first) wall = Date.now();
  anchorMonoNs = process.hrtime.bigint();
  anchorWallNs = BigInt(wall) * NS_PER_MS;
}

/** Nanoseconds since the Unix epoch. */
export function epochNs(): bigint {
  if (anchorWallNs === 0n) anchor();
  let ns = anchorWallNs + (process.hrtime.bigint() - anchorMonoNs);
  const drift = ns - BigInt(Date.now()) * NS_PER_MS;
  if (drift < -NS_PER_MS || drift > 2n * NS_PER_MS) {
    anchor();
    ns = anchorWallNs + (process.hrtime.bigint() - anchorMonoNs);
  }
  return ns;
}

/** RFC 3339 in UTC with up to nine fractional digits, trailing zeros dropped (Go's RFC3339Nano). */
export function rfc3339Nano(ns: bigint): string {
  const seconds = ns / 1_000_000_000n;
  const fraction = (ns % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${new Date(Number(seconds) * 1000).toISOString().slice(0, 19)}${fraction === '' ? '' : `.${fraction}`}Z`;
}

/** Now, as Agones stamps agones.dev/last-allocated. */
export function lastAllocatedNow(): string {
  return rfc3339Nano(epochNs());
}
