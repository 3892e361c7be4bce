// Kubernetes label and annotation syntax, so bad metadata is rejected before any write.

const NAME = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Problem with a qualified key (`[prefix/]name`), or null when valid. */
export function qualifiedKeyProblem(key: string): string | null {
  const slash = key.indexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : '';
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (slash >= 0 && (prefix.length === 0 || prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) {
    return `invalid key ${JSON.stringify(key)}: prefix must be a DNS subdomain of at most 253 characters`;
  }
  if (name.length === 0 || name.length > 63 || !NAME.test(name)) {
    return `invalid key ${JSON.stringify(key)}: name must be 1-63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric`;
  }
  return null;
}

/** Problem with a label value, or null when valid. */
export function labelValueProblem(value: string): string | null {
  if (value === '') return null;
  if (value.length > 63 || !NAME.test(value)) {
    return `invalid value ${JSON.stringify(value)}: must be at most 63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric`;
  }
  return null;
}

/** Problem with a namespace name, or null when valid. */
export function namespaceProblem(namespace: string): string | null {
  if (namespace === '') return 'required';
  if (namespace.length > 63 || !DNS_LABEL.test(namespace)) {
    // At most 80 characters of the value are echoed back: a 4 MiB name must not come back as a 4 MiB error.
    const shown = namespace.length > 80 ? `${namespace.slice(0, 80)}…` : namespace;
    return `invalid value ${JSON.stringify(shown)}: must be a DNS label (lowercase alphanumerics and '-', at most 63)`;
  }
  return null;
}
