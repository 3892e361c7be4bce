// Bounds on request size. Agones has none; a gateway in front of every match start
// rejects absurd requests up front instead of scanning thousands of selectors.

export const LIMITS = {
  /** Selectors of any kind (gameServerSelectors, preferred…, required). */
  maxSelectors: 64,
  /** Entries in any one label, annotation, counter or list map. */
  maxMapEntries: 256,
  /** Priorities. */
  maxPriorities: 32,
  /** Values in addValues / deleteValues; Agones caps list capacity at 1000. */
  maxListValues: 1000,
  /** Agones' list capacity ceiling. */
  maxListCapacity: 1000,
  /** Total annotation bytes, as Kubernetes limits them. */
  maxAnnotationBytes: 256 * 1024,
  /** Namespaces one GatewayService.GetCapacity call may name. */
  maxCapacityNamespaces: 64,
  /** Length of a list value or containsValue. */
  maxValueLength: 1024,
} as const;
