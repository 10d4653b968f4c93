{{/*
Labels of a monitoring object: the component's labels plus monitoring.labels (kube-prometheus-stack
selects ServiceMonitors and PrometheusRules by `release`). Called like sluice.componentLabels.
*/}}
{{- define "sluice.monitoring.labels" -}}
{{ include "sluice.componentLabels" . }}
{{- with .ctx.Values.monitoring.labels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Relabelings of every sluice scrape target: `release`, `component` (and `group` for a consumer group)
as target labels, which the dashboard and the alerts select on. Called with (dict "ctx" $ "component" "consumer" "group" "default").
*/}}
{{- define "sluice.monitoring.relabelings" -}}
- action: replace
  targetLabel: release
  replacement: {{ .ctx.Release.Name | quote }}
- action: replace
  targetLabel: component
  replacement: {{ .component | quote }}
{{- with (get . "group") }}
- action: replace
  targetLabel: group
  replacement: {{ . | quote }}
{{- end }}
{{- end }}

{{/*
prometheus.io/* pod annotations (a Prometheus without the Operator), when monitoring.scrapeAnnotations
is on. Called with (dict "ctx" $ "port" 8080 "path" "/metrics"); renders nothing when off.
*/}}
{{- define "sluice.monitoring.scrapeAnnotations" -}}
{{- $m := .ctx.Values.monitoring }}
{{- if and $m.enabled $m.scrapeAnnotations -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: {{ .path | quote }}
{{- end }}
{{- end }}

{{/*
PromQL label matchers of sluice's own series (producer and consumers) of this release.
*/}}
{{- define "sluice.monitoring.selector" -}}
namespace="{{ .Release.Namespace }}",release="{{ .Release.Name }}"
{{- end }}

{{/*
PromQL label matchers of the broker's series: monitoring.rules.brokerSelector, or the bundled broker's targets.
*/}}
{{- define "sluice.monitoring.brokerSelector" -}}
{{- .Values.monitoring.rules.brokerSelector | default (printf "namespace=\"%s\",release=\"%s\",component=\"rabbitmq\"" .Release.Namespace .Release.Name) }}
{{- end }}

{{/*
A PromQL regex of every consumer group's work queue: <prefix>.<group>, escaped.
*/}}
{{- define "sluice.monitoring.workQueues" -}}
{{- $names := list }}
{{- range .Values.consumer.groups }}
{{- $names = append $names (regexQuoteMeta .name) }}
{{- end }}
{{- printf "%s\\.(%s)" (regexQuoteMeta .Values.config.topology.prefix) (join "|" $names) }}
{{- end }}
