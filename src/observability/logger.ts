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
    destination ?? boundedStdout(),
  );
}

/** Bytes of log lines that may wait for a slow stdout before lines are dropped (and counted). */
export const MAX_LOG_BUFFER_BYTES = 64 * 1024 * 1024;

/**
 * pino's default stdout stream is asynchronous with an unbounded buffer: under a flood, lines
 * (audit lines included) queued in memory faster than stdout drained. Writes stay asynchronous
 * (a synchronous write per line costs CPU on every call) but the buffer is bounded; dropped lines
 * are reported on stderr at most once a second.
 */
function boundedStdout(): pino.DestinationStream {
  const stream = pino.destination({ dest: 1, sync: false, maxLength: MAX_LOG_BUFFER_BYTES });
  let dropped = 0;
  let timer: NodeJS.Timeout | undefined;
  stream.on('drop', () => {
    dropped++;
    timer ??= setTimeout(() => {
      process.stderr.write(`allocator-gateway: stdout is not keeping up; ${dropped} log lines dropped (buffer ${MAX_LOG_BUFFER_BYTES} bytes)\n`);
      dropped = 0;
      timer = undefined;
    }, 1_000);
    timer.unref();
  });
  return stream;
}
