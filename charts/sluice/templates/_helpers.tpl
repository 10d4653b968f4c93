{{/*
Expand the name of the chart.
*/}}
{{- define "sluice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name.
We truncate at 63 chars because some Kubernetes name fields are limited to this (by the DNS naming spec).
If release name contains chart name it will be used as a full name.
*/}}
{{- define "sluice.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Create chart name and version as used by the chart label.
*/}}
{{- define "sluice.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels
*/}}
{{- define "sluice.labels" -}}
helm.sh/chart: {{ include "sluice.chart" . }}
{{ include "sluice.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels
*/}}
{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Create the name of the service account to use
*/}}
{{- define "sluice.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sluice.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Name of one component's resources: <fullname>-<component>. Called with (dict "ctx" $ "component" "producer").
*/}}
{{- define "sluice.componentFullname" -}}
{{- printf "%s-%s" (include "sluice.fullname" .ctx) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels of one component: selectorLabels plus app.kubernetes.io/component (and the consumer group, if given).
*/}}
{{- define "sluice.componentSelectorLabels" -}}
{{ include "sluice.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- with (get . "group") }}
sluice/consumer-group: {{ . }}
{{- end }}
{{- end }}

{{/*
Labels of one component's resources: labels plus the component selector labels.
*/}}
{{- define "sluice.componentLabels" -}}
{{ include "sluice.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- with (get . "group") }}
sluice/consumer-group: {{ . }}
{{- end }}
{{- end }}

{{/*
Image reference of a sluice service; the tag defaults to the chart's appVersion.
*/}}
{{- define "sluice.image" -}}
{{- printf "%s:%s" .image.repository (.image.tag | default .ctx.Chart.AppVersion | toString) }}
{{- end }}

{{/*
The bundled broker's RabbitMQ version (major.minor.patch): rabbitmq.version, else the version the
image tag starts with (4.3.6-management gives 4.3.6). The configuration differs between 4.0, 4.1+
and 4.3 (peer discovery v2, Khepri); a tag that names no version needs rabbitmq.version.
*/}}
{{- define "sluice.rabbitmq.version" -}}
{{- $r := .Values.rabbitmq }}
{{- $version := $r.version | default (regexFind "^[0-9]+\\.[0-9]+(\\.[0-9]+)?" ($r.image.tag | toString)) }}
{{- if not $version }}
{{- fail (printf "rabbitmq.image.tag %q names no RabbitMQ version: set rabbitmq.version (for example 4.3.6)" ($r.image.tag | toString)) }}
{{- end }}
{{- $version }}
{{- end }}

{{/*
"true" when the bundled broker's Kubernetes peer discovery asks the API server for the headless
Service's endpoints (RabbitMQ 4.0 and older). 4.1+ (peer discovery v2) derives its seed, pod -0,
from its own node name, needs no API access and ignores the cluster_formation.k8s.* keys.
*/}}
{{- define "sluice.rabbitmq.peerDiscoveryUsesApi" -}}
{{- if and .Values.rabbitmq.peerDiscovery.enabled (semverCompare "<4.1.0-0" (include "sluice.rabbitmq.version" .)) }}true{{ end }}
{{- end }}

{{/*
The memory RabbitMQ may count on, in bytes: the container's memory limit less
rabbitmq.memoryHeadroomPercent, so that the broker raises its memory alarm (and blocks publishers)
before the kernel OOM-kills it. Empty without a memory limit.
*/}}
{{- define "sluice.rabbitmq.memoryAvailableBytes" -}}
{{- $limit := dig "limits" "memory" "" (.Values.rabbitmq.resources | default dict) | toString }}
{{- if $limit }}
{{- $parts := regexFindAll "^([0-9]+(\\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$" $limit 1 }}
{{- if not $parts }}
{{- fail (printf "rabbitmq.resources.limits.memory %q is not a quantity sluice understands (use e.g. 2Gi or 1500M)" $limit) }}
{{- end }}
{{- $number := regexReplaceAll "(Ki|Mi|Gi|Ti|k|M|G|T)$" $limit "" }}
{{- $unit := trimPrefix $number $limit }}
{{- $factor := get (dict "" 1 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776) $unit }}
{{- $keep := divf (sub 100 (int .Values.rabbitmq.memoryHeadroomPercent)) 100 }}
{{- mulf (float64 $number) $factor $keep | floor | int64 }}
{{- end }}
{{- end }}

{{/*
Name of the RabbitMQ headless Service that gives each broker pod a stable DNS name.
*/}}
{{- define "sluice.rabbitmq.headlessName" -}}
{{- printf "%s-headless" (include "sluice.componentFullname" (dict "ctx" . "component" "rabbitmq")) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Name of the Secret holding the broker credentials: the bundled broker's (generated or existing) or the external one's.
*/}}
{{- define "sluice.brokerSecretName" -}}
{{- if .Values.externalBroker.enabled }}
{{- .Values.externalBroker.existingSecret }}
{{- else }}
{{- .Values.rabbitmq.auth.existingSecret | default (include "sluice.componentFullname" (dict "ctx" . "component" "rabbitmq")) }}
{{- end }}
{{- end }}

{{/*
A consumer group with every key it does not set taken from consumer.defaults. Returns YAML; use with fromYaml.
*/}}
{{- define "sluice.consumerGroup" -}}
{{- mergeOverwrite (deepCopy .ctx.Values.consumer.defaults) (deepCopy .group) | toYaml }}
{{- end }}

{{/*
terminationGracePeriodSeconds of a consumer group: the override, or its drain time plus the margin.
*/}}
{{- define "sluice.consumerGracePeriod" -}}
{{- if gt (int .group.terminationGracePeriodSeconds) 0 }}
{{- .group.terminationGracePeriodSeconds | int }}
{{- else }}
{{- add (.group.shutdownGraceSeconds | int) (.ctx.Values.consumer.terminationGraceMarginSeconds | int) }}
{{- end }}
{{- end }}

{{/*
terminationGracePeriodSeconds of the producer: the override, or preStop sleep + publish timeout + margin.
*/}}
{{- define "sluice.producerGracePeriod" -}}
{{- $p := .Values.producer }}
{{- if gt (int $p.terminationGracePeriodSeconds) 0 }}
{{- $p.terminationGracePeriodSeconds | int }}
{{- else }}
{{- add ($p.preStopSleepSeconds | int) ($p.publish.timeoutSeconds | int) ($p.terminationGraceMarginSeconds | int) }}
{{- end }}
{{- end }}

{{/*
Topology spread constraints for one component's pods (see topologySpread in values.yaml).
*/}}
{{- define "sluice.topologySpread" -}}
{{- $spread := .ctx.Values.topologySpread }}
{{- if $spread.enabled -}}
topologySpreadConstraints:
{{- range $spread.topologyKeys }}
  - maxSkew: {{ $spread.maxSkew }}
    topologyKey: {{ . }}
    whenUnsatisfiable: {{ $spread.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "sluice.componentSelectorLabels" $ | nindent 8 }}
    {{- if (get $ "rolling") }}
    matchLabelKeys:
      - pod-template-hash
    {{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
SLUICE_* environment shared by the producer and every consumer: broker, topology, retries, HTTP, logging.
*/}}
{{- define "sluice.commonEnv" -}}
{{- $v := .Values }}
{{- $secret := include "sluice.brokerSecretName" . }}
{{- if $v.externalBroker.enabled -}}
- name: SLUICE_AMQP_URL
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $v.externalBroker.urlKey }}
{{- with $v.externalBroker.usernameKey }}
- name: SLUICE_AMQP_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ . }}
{{- end }}
{{- with $v.externalBroker.passwordKey }}
- name: SLUICE_AMQP_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ . }}
{{- end }}
{{- else -}}
- name: SLUICE_AMQP_URL
  value: {{ printf "amqp://%s:5672/%%2F" (include "sluice.componentFullname" (dict "ctx" . "component" "rabbitmq")) | quote }}
- name: SLUICE_AMQP_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $v.rabbitmq.auth.secretKeys.username }}
- name: SLUICE_AMQP_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $v.rabbitmq.auth.secretKeys.password }}
{{- end }}
- name: SLUICE_AMQP_HEARTBEAT_SECONDS
  value: {{ $v.config.amqp.heartbeatSeconds | int | quote }}
{{- with $v.config.amqp.tls }}
{{- if .existingSecret }}
- name: SLUICE_AMQP_CA_FILE
  value: {{ printf "/etc/sluice/amqp-tls/%s" .caKey | quote }}
{{- if .certKey }}
- name: SLUICE_AMQP_CERT_FILE
  value: {{ printf "/etc/sluice/amqp-tls/%s" .certKey | quote }}
- name: SLUICE_AMQP_KEY_FILE
  value: {{ printf "/etc/sluice/amqp-tls/%s" .keyKey | quote }}
{{- end }}
{{- end }}
{{- end }}
- name: SLUICE_TOPOLOGY_EXCHANGE
  value: {{ $v.config.topology.exchange | quote }}
- name: SLUICE_TOPOLOGY_PREFIX
  value: {{ $v.config.topology.prefix | quote }}
- name: SLUICE_TOPOLOGY_QUEUE_TYPE
  value: {{ $v.config.topology.queueType | quote }}
- name: SLUICE_TOPOLOGY_DELIVERY_LIMIT
  value: {{ $v.config.topology.deliveryLimit | int | quote }}
- name: SLUICE_RETRY_DELAYS
  value: {{ join "," $v.config.retry.delays | quote }}
- name: SLUICE_RETRY_MAX_ATTEMPTS
  value: {{ $v.config.retry.maxAttempts | int | quote }}
- name: SLUICE_CONSUMER_QUEUE_POLL_SECONDS
  value: {{ $v.config.queuePollSeconds | int | quote }}
- name: SLUICE_MAX_MESSAGE_BYTES
  value: {{ $v.config.maxMessageBytes | int | quote }}
{{- if $v.config.schemasConfigMap }}
- name: SLUICE_SCHEMA_DIR
  value: /etc/sluice/schemas
{{- end }}
- name: SLUICE_HTTP_HOST
  value: "0.0.0.0"
- name: SLUICE_HTTP_PORT
  value: "8080"
- name: SLUICE_LOG_LEVEL
  value: {{ $v.config.logLevel | quote }}
- name: SLUICE_LOG_FORMAT
  value: {{ $v.config.logFormat | quote }}
{{- end }}

{{/*
Volumes every sluice service pod has: a writable /tmp, and the optional schemas and broker TLS material.
*/}}
{{- define "sluice.commonVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- with .Values.config.schemasConfigMap }}
- name: schemas
  configMap:
    name: {{ . }}
{{- end }}
{{- with .Values.config.amqp.tls.existingSecret }}
- name: amqp-tls
  secret:
    secretName: {{ . }}
{{- end }}
{{- end }}

{{/*
Mounts of sluice.commonVolumes.
*/}}
{{- define "sluice.commonVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.config.schemasConfigMap }}
- name: schemas
  mountPath: /etc/sluice/schemas
  readOnly: true
{{- end }}
{{- if .Values.config.amqp.tls.existingSecret }}
- name: amqp-tls
  mountPath: /etc/sluice/amqp-tls
  readOnly: true
{{- end }}
{{- end }}

{{/*
HTTP probes on the services' one port: liveness on /healthz, readiness on /readyz.
*/}}
{{- define "sluice.httpProbes" -}}
startupProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: 2
  failureThreshold: 30
livenessProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /readyz
    port: http
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 2
{{- end }}
