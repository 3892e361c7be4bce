// pino JSON logs. Keys and secrets are redacted wherever they could appear.
import { pino, type Logger } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  '*.key', '*.privateKey', '*.token', '*.password', '*.authorization', '*.tlsKey',
  'config.tls.keyFile', 'req.headers.authorization', 'headers.authorization',
];

/** The root logger; `destination` lets tests capture lines. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'allocator-gateway' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    // pino's default stdout stream is asynchronous with an unbounded buffer: under a flood, lines
    // (audit lines included) queued in memory faster than stdout drained. Synchronous writes make a
    // slow log consumer slow the gateway down instead of growing its memory or losing audit lines.
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
