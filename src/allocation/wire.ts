// The Allocate messages as plain objects, in the shape @grpc/proto-loader produces with
// { keepCase, longs: String, enums: String, defaults, oneofs }. Both front doors and the
// remote client speak this shape; from-proto/to-proto convert it to and from the domain.

/** google.protobuf.Int64Value / StringValue as decoded. */
export interface WireInt64Value { value: string | number }
export interface WireStringValue { value: string }

export interface WireMetaPatch {
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface WireGameServerSelector {
  matchLabels?: Record<string, string>;
  gameServerState?: 'READY' | 'ALLOCATED' | number;
  players?: { minAvailable?: string | number; maxAvailable?: string | number } | null;
  counters?: Record<string, { minCount?: string | number; maxCount?: string | number; minAvailable?: string | number; maxAvailable?: string | number }>;
  lists?: Record<string, { containsValue?: string; minAvailable?: string | number; maxAvailable?: string | number }>;
}

export interface WirePriority {
  type?: 'Counter' | 'List' | number;
  key?: string;
  order?: 'Ascending' | 'Descending' | number;
}

export interface WireCounterAction {
  action?: WireStringValue | null;
  amount?: WireInt64Value | null;
  capacity?: WireInt64Value | null;
}

export interface WireListAction {
  addValues?: string[];
  capacity?: WireInt64Value | null;
  deleteValues?: string[];
}

export interface WireAllocationRequest {
  namespace?: string;
  multiClusterSetting?: { enabled?: boolean; policySelector?: { matchLabels?: Record<string, string> } | null } | null;
  requiredGameServerSelector?: WireGameServerSelector | null;
  preferredGameServerSelectors?: WireGameServerSelector[];
  scheduling?: 'Packed' | 'Distributed' | number;
  metaPatch?: WireMetaPatch | null;
  metadata?: WireMetaPatch | null;
  gameServerSelectors?: WireGameServerSelector[];
  priorities?: WirePriority[];
  counters?: Record<string, WireCounterAction>;
  lists?: Record<string, WireListAction>;
}

export interface WireAllocationResponse {
  gameServerName: string;
  ports: { name: string; port: number }[];
  address: string;
  addresses: { type: string; address: string }[];
  nodeName: string;
  source: string;
  metadata?: { labels: Record<string, string>; annotations: Record<string, string> } | null;
  counters: Record<string, { count: WireInt64Value | null; capacity: WireInt64Value | null }>;
  lists: Record<string, { values: string[]; capacity: WireInt64Value | null }>;
}
