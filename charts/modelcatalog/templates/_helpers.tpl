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
