{{/* Labels every object carries (the same as deploy/), plus Helm's. */}}
{{- define "gw.labels" -}}
app.kubernetes.io/name: allocator-gateway
app.kubernetes.io/part-of: allocator-gateway
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version | replace "+" "_" }}
{{- end }}

{{- define "gw.selector" -}}
app.kubernetes.io/name: allocator-gateway
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Served namespaces and the extra RBAC namespaces, without duplicates. */}}
{{- define "gw.rbacNamespaces" -}}
{{- concat .Values.namespaces .Values.rbac.extraNamespaces | uniq | toJson -}}
{{- end }}
