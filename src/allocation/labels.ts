// Kubernetes label and annotation syntax, so bad metadata is rejected before any write. The rules
// are apimachinery's: label keys are qualified names (ValidateLabels); annotation keys are the
// same once lowercased (ValidateAnnotations), so `Example.com/matchId` is a valid annotation key.
import { echo } from './errors.ts';

const NAME = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Problem with a qualified key (`[prefix/]name`), or null when valid. */
export function qualifiedKeyProblem(key: string): string | null {
  return qualifiedNameProblem(key, key);
}

/**
 * Problem with an annotation key, or null when valid: a qualified name after lowercasing as Go's
 * strings.ToLower does (which maps U+0130 to a plain "i", where JavaScript adds a combining dot).
 */
export function annotationKeyProblem(key: string): string | null {
  return qualifiedNameProblem(key.replaceAll('\u0130', 'i').toLowerCase(), key);
}

function qualifiedNameProblem(checked: string, key: string): string | null {
  const slash = checked.indexOf('/');
  const prefix = slash >= 0 ? checked.slice(0, slash) : '';
  const name = slash >= 0 ? checked.slice(slash + 1) : checked;
  if (slash >= 0 && (prefix.length === 0 || prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) {
    return `invalid key ${echo(key)}: prefix must be a DNS subdomain of at most 253 characters`;
  }
  if (name.length === 0 || name.length > 63 || !NAME.test(name)) {
    return `invalid key ${echo(key)}: name must be 1-63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric`;
  }
  return null;
}

/** Problem with a label value, or null when valid. */
export function labelValueProblem(value: string): string | null {
  if (value === '') return null;
  if (value.length > 63 || !NAME.test(value)) {
    return `invalid value ${echo(value)}: must be at most 63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric`;
  }
  return null;
}

/** Problem with a namespace name, or null when valid. */
export function namespaceProblem(namespace: string): string | null {
  if (namespace === '') return 'required';
  if (namespace.length > 63 || !DNS_LABEL.test(namespace)) {
    return `invalid value ${echo(namespace)}: must be a DNS label (lowercase alphanumerics and '-', at most 63)`;
  }
  return null;
}
