{{/* Labels of every object of the chart. */}}
{{- define "modelcatalog.labels" -}}
app.kubernetes.io/name: modelcatalog
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: modelcatalog
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The operator's pods: the operator's MODELCATALOG_OPERATOR_POD_LABELS (the only pods of its namespace that reach model servers). */}}
{{- define "modelcatalog.selector" -}}
app.kubernetes.io/name: modelcatalog
app.kubernetes.io/component: operator
{{- end -}}

{{- define "modelcatalog.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ $tag }}
{{- end -}}
{{- end -}}

{{/* "true" when this release owns the cluster's shared objects (every unsharded release does). */}}
{{- define "modelcatalog.ownsShared" -}}
{{- if or (not .Values.shard.name) .Values.shard.ownsShared }}true{{ end -}}
{{- end -}}

{{/* Cluster-scoped names of a release carry its shard's name, so two shards' releases do not collide. */}}
{{- define "modelcatalog.shardSuffix" -}}
{{- with .Values.shard.name }}-{{ . }}{{ end -}}
{{- end -}}

{{/* The shard's ValidatingWebhookConfiguration (MODELCATALOG_WEBHOOK_CONFIGURATION). */}}
{{- define "modelcatalog.webhookConfiguration" -}}
{{ (.Files.Get "files/policy.yaml" | fromYaml).webhook.metadata.name }}{{ include "modelcatalog.shardSuffix" . }}
{{- end -}}

{{/* The label values this shard serves. */}}
{{- define "modelcatalog.shardValues" -}}
{{ join "," (.Values.shard.values | default (list .Values.shard.name)) }}
{{- end -}}

{{- define "modelcatalog.serviceAccountName" -}}
{{ .Values.serviceAccount.name }}
{{- end -}}

{{/* The settings ConfigMap's data: one definition, rendered in the ConfigMap and hashed into the pod template. */}}
{{- define "modelcatalog.settingsData" -}}
region: {{ .Values.region | quote }}
clockOffsetDays: {{ .Values.clockOffsetDays | quote }}
{{- end -}}

{{/* The webhook's Service: the name the operator's certificate covers (MODELCATALOG_WEBHOOK_SERVICE). */}}
{{- define "modelcatalog.webhookService" -}}
modelcatalog-webhook
{{- end -}}
