// Loads proto/gateway/v1/gateway.proto (GatewayService: GetCapacity, ExplainRoute), in the
// same proto-loader shape as the allocation contract.
import * as protoLoader from '@grpc/proto-loader';
import { LOADER_OPTIONS } from '../protocol/proto.ts';

export const GATEWAY_PROTO = 'gateway/v1/gateway.proto';
export const GATEWAY_SERVICE = 'gateway.v1.GatewayService';

export const gatewayPackageDefinition = protoLoader.loadSync(GATEWAY_PROTO, LOADER_OPTIONS);

const service = gatewayPackageDefinition[GATEWAY_SERVICE] as protoLoader.ServiceDefinition;

/** The service definition, to register on a grpc-js server. */
export const gatewayServiceDefinition = service;
export const getCapacityMethod = service.GetCapacity!;
export const explainRouteMethod = service.ExplainRoute!;

/** StateCounts as decoded (int64 as strings). */
export interface WireStateCounts {
  ready: string | number;
  allocated: string | number;
}

export interface WireNamespaceCapacity {
  total: WireStateCounts | null;
  fleets: Record<string, WireStateCounts>;
  labels: { key: string; value: string; counts: WireStateCounts | null }[];
  labels_complete: boolean;
}

export interface WireGetCapacityResponse {
  namespaces: Record<string, WireNamespaceCapacity>;
  ttl_ms: string | number;
  synced: boolean;
  /** Allocate honours the idempotency-key metadata (absent from older gateways). */
  idempotency_keys?: boolean;
}

export interface WireRouteStep {
  policy: string;
  cluster_name: string;
  priority: number;
  weight: string | number;
  kind: string;
  namespace: string;
  endpoints: string[];
  decision: string;
  reason: string;
}

export interface WireExplainRouteResponse {
  multi_cluster: boolean;
  steps: WireRouteStep[];
  problems: string[];
  randomized: boolean;
}
