// The slice of a pino Logger the Kubernetes store uses; a pino Logger fits it as is.

/** Structured logger: an object of fields, then a message. */
export interface StoreLogger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

const noop = (): void => {};

/** Discards everything (the default when no logger is given). */
export const silentLogger: StoreLogger = { debug: noop, info: noop, warn: noop, error: noop };
