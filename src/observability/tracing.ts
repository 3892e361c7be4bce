// OpenTelemetry traces of Allocate calls, off unless an OTLP endpoint is configured. Call sites
// use startSpan()/inSpan(); while tracing is off those return at once (one boolean test, no
// allocation beyond the caller's attribute object), and no OpenTelemetry SDK module is loaded.
// The current span travels in an AsyncLocalStorage of this module, not a global context manager,
// so nothing outside the gateway's own calls is affected. W3C traceparent/tracestate in, and out
// to remote gateways.
import { AsyncLocalStorage } from 'node:async_hooks';
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type TextMapGetter,
  type TextMapPropagator,
  type TextMapSetter,
  type Tracer,
} from '@opentelemetry/api';

export interface TracingOptions {
  /** OTLP/HTTP traces URL, e.g. http://otel-collector:4318/v1/traces. */
  readonly otlpEndpoint: string;
  readonly serviceName: string;
  /** Share of root traces sampled (a caller's sampled flag is followed). */
  readonly sampleRatio: number;
  /** Extra OTLP request headers (e.g. an API key of a tracing backend). */
  readonly headers?: Readonly<Record<string, string>>;
}

/** W3C trace context as carried in gRPC metadata or HTTP headers. */
export interface TraceCarrier {
  traceparent?: string;
  tracestate?: string;
}

/** A started span: run work inside it (children attach to it), add attributes, end it once. */
export interface SpanScope {
  run<T>(fn: () => T): T;
  set(attributes: Attributes): void;
  /** Ends the span; `error` marks it failed with that description. */
  end(attributes?: Attributes, error?: string): void;
  /** This span's context as W3C headers, to send with a call it makes. */
  headers(): TraceCarrier;
}

export type SpanRole = 'server' | 'client' | 'internal';

const NOOP: SpanScope = {
  run: (fn) => fn(),
  set: () => {},
  end: () => {},
  headers: () => ({}),
};

const KINDS = { server: SpanKind.SERVER, client: SpanKind.CLIENT, internal: SpanKind.INTERNAL } as const;
const GETTER: TextMapGetter<TraceCarrier> = {
  keys: (c) => Object.keys(c),
  get: (c, k) => (k === 'traceparent' || k === 'tracestate' ? c[k] : undefined),
};
const SETTER: TextMapSetter<TraceCarrier> = {
  set: (c, k, v) => {
    if (k === 'traceparent' || k === 'tracestate') c[k] = v;
  },
};

interface Active {
  readonly tracer: Tracer;
  readonly propagator: TextMapPropagator;
  shutdown(): Promise<void>;
}

let active: Active | null = null;
const current = new AsyncLocalStorage<Context>();

export function tracingEnabled(): boolean {
  return active !== null;
}

/** Starts exporting spans over OTLP/HTTP. One tracer per process: a second start is refused. */
export async function startTracing(o: TracingOptions): Promise<{ shutdown(): Promise<void> }> {
  if (active) throw new Error('tracing is already started in this process');
  // Loaded only when tracing is on.
  const [{ BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler }, { OTLPTraceExporter }, { resourceFromAttributes }, { W3CTraceContextPropagator }] = await Promise.all([
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/core'),
  ]);
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': o.serviceName }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(o.sampleRatio) }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: o.otlpEndpoint, headers: { ...o.headers } }), { scheduledDelayMillis: 1_000, maxQueueSize: 4_096 })],
  });
  const state: Active = {
    tracer: provider.getTracer('allocator-gateway'),
    propagator: new W3CTraceContextPropagator(),
    shutdown: async () => {
      if (active === state) active = null;
      await provider.shutdown(); // flushes what is buffered
    },
  };
  active = state;
  return { shutdown: state.shutdown };
}

/**
 * Starts a span: a child of the span current in this async context, else of `parent` (a caller's
 * W3C headers), else a new trace. Returns a no-op scope while tracing is off.
 */
export function startSpan(name: string, attributes: Attributes = {}, opts: { role?: SpanRole; parent?: TraceCarrier } = {}): SpanScope {
  const a = active;
  if (a === null) return NOOP;
  let parentCtx = current.getStore();
  if (parentCtx === undefined && opts.parent?.traceparent) parentCtx = a.propagator.extract(ROOT_CONTEXT, opts.parent, GETTER);
  const span: Span = a.tracer.startSpan(name, { kind: KINDS[opts.role ?? 'internal'], attributes }, parentCtx ?? ROOT_CONTEXT);
  const ctx = trace.setSpan(parentCtx ?? ROOT_CONTEXT, span);
  let ended = false;
  return {
    run: (fn) => current.run(ctx, fn),
    set: (attrs) => span.setAttributes(attrs),
    end: (attrs, error) => {
      if (ended) return;
      ended = true;
      if (attrs) span.setAttributes(attrs);
      if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
      span.end();
    },
    headers: () => {
      const out: TraceCarrier = {};
      a.propagator.inject(ctx, out, SETTER);
      return out;
    },
  };
}

/** The current span's context as W3C headers ({} when tracing is off or no span is current). */
export function traceHeaders(): TraceCarrier {
  const a = active;
  const ctx = a === null ? undefined : current.getStore();
  if (a === null || ctx === undefined) return {};
  const out: TraceCarrier = {};
  a.propagator.inject(ctx, out, SETTER);
  return out;
}

/** Runs `fn` in a child span that ends with fn's outcome (an exception marks it failed). */
export async function inSpan<T>(name: string, attributes: Attributes, fn: () => Promise<T>, role: SpanRole = 'internal'): Promise<T> {
  if (active === null) return await fn();
  const s = startSpan(name, attributes, { role });
  try {
    const v = await s.run(fn);
    s.end();
    return v;
  } catch (err) {
    s.end(errorAttributes(err), err instanceof Error ? err.message : String(err));
    throw err;
  }
}

/** `allocator_gateway.reason` of an AllocationError-like failure, for span attributes. */
export function errorAttributes(err: unknown): Attributes {
  const reason = (err as { reason?: unknown } | null)?.reason;
  return typeof reason === 'string' ? { 'allocator_gateway.reason': reason } : { 'allocator_gateway.reason': (err as Error)?.name ?? 'Error' };
}
