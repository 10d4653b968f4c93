{{/*
Checks the values that values.schema.json cannot: choices that exclude each other and the timing
budgets between the consumers, the broker and Kubernetes. Every message is gathered and the
release fails once, listing them all. Called from NOTES.txt, which Helm renders on every install,
upgrade and template.
*/}}
{{- define "sluice.validateValues" -}}
{{- $errors := list }}
{{- $v := .Values }}

{{- /* Exactly one broker. */}}
{{- if and $v.rabbitmq.enabled $v.externalBroker.enabled }}
{{- $errors = append $errors "rabbitmq.enabled and externalBroker.enabled are both true: use the bundled broker or an external one, not both." }}
{{- else if not (or $v.rabbitmq.enabled $v.externalBroker.enabled) }}
{{- $errors = append $errors "rabbitmq.enabled and externalBroker.enabled are both false: sluice needs a broker." }}
{{- end }}
{{- if and $v.externalBroker.enabled (not $v.externalBroker.existingSecret) }}
{{- $errors = append $errors "externalBroker.existingSecret is empty: name the Secret that holds the broker URL (key externalBroker.urlKey)." }}
{{- end }}
{{- if and $v.rabbitmq.enabled (gt (int $v.rabbitmq.replicas) 1) (not $v.rabbitmq.peerDiscovery.enabled) }}
{{- $errors = append $errors (printf "rabbitmq.replicas is %d but rabbitmq.peerDiscovery.enabled is false: the nodes could not find each other." (int $v.rabbitmq.replicas)) }}
{{- end }}

{{- /* Timing budgets of each consumer group. */}}
{{- $consumerTimeout := ternary (int $v.externalBroker.consumerTimeoutSeconds) (int $v.rabbitmq.consumerTimeoutSeconds) $v.externalBroker.enabled }}
{{- $consumerTimeoutKey := ternary "externalBroker.consumerTimeoutSeconds" "rabbitmq.consumerTimeoutSeconds" $v.externalBroker.enabled }}
{{- $margin := int $v.consumer.terminationGraceMarginSeconds }}
{{- $seen := dict }}
{{- range $v.consumer.groups }}
{{- $g := include "sluice.consumerGroup" (dict "ctx" $ "group" .) | fromYaml }}
{{- $at := printf "consumer.groups[%s]" $g.name }}
{{- if hasKey $seen $g.name }}
{{- $errors = append $errors (printf "%s appears twice in consumer.groups: group names must be unique." $at) }}
{{- end }}
{{- $_ := set $seen $g.name true }}
{{- $processing := int $g.maxProcessingSeconds }}
{{- $drain := int $g.shutdownGraceSeconds }}
{{- /* A prefetched message may wait behind ceil(prefetch / concurrency) others before it is processed and acknowledged. */}}
{{- $rounds := div (add (int $g.prefetch) (sub (int $g.concurrency) 1)) (int $g.concurrency) }}
{{- $unacked := mul $rounds $processing }}
{{- if ge $unacked $consumerTimeout }}
{{- $errors = append $errors (printf "%s: a message can stay unacknowledged for ceil(prefetch %d / concurrency %d) x maxProcessingSeconds %d = %ds, not below %s (%ds); the broker would close the channel. Lower prefetch or maxProcessingSeconds, raise concurrency or the consumer timeout." $at (int $g.prefetch) (int $g.concurrency) $processing $unacked $consumerTimeoutKey $consumerTimeout) }}
{{- end }}
{{- if and (eq $g.sink.kind "http") (gt (int $g.sink.timeoutSeconds) $processing) }}
{{- $errors = append $errors (printf "%s: sink.timeoutSeconds (%d) is above maxProcessingSeconds (%d): one webhook call could outlast the processing budget." $at (int $g.sink.timeoutSeconds) $processing) }}
{{- end }}
{{- if lt $drain $processing }}
{{- $errors = append $errors (printf "%s: shutdownGraceSeconds (%d) is below maxProcessingSeconds (%d): a message in flight at SIGTERM could not finish during the drain." $at $drain $processing) }}
{{- end }}
{{- $grace := int $g.terminationGracePeriodSeconds }}
{{- if and (gt $grace 0) (lt $grace (add $drain $margin)) }}
{{- $errors = append $errors (printf "%s: terminationGracePeriodSeconds (%d) is below shutdownGraceSeconds (%d) + consumer.terminationGraceMarginSeconds (%d): Kubernetes would kill the pod mid-drain." $at $grace $drain $margin) }}
{{- end }}
{{- if and (eq $g.sink.kind "http") (not (regexMatch "^https?://" $g.sink.url)) }}
{{- $errors = append $errors (printf "%s: sink.kind is http but sink.url (%q) is not an http:// or https:// URL." $at $g.sink.url) }}
{{- end }}
{{- if and (eq $g.sink.kind "file") (not $g.sink.path) }}
{{- $errors = append $errors (printf "%s: sink.kind is file but sink.path is empty." $at) }}
{{- end }}
{{- if and $g.autoscaling.enabled $v.keda.enabled }}
{{- $errors = append $errors (printf "%s: autoscaling.enabled (HPA) and keda.enabled are both true: two autoscalers would fight over the Deployment. Set consumer.defaults.autoscaling.enabled=false to use KEDA." $at) }}
{{- end }}
{{- if and $g.autoscaling.enabled (lt (int $g.autoscaling.minReplicas) 1) }}
{{- $errors = append $errors (printf "%s: autoscaling.minReplicas is 0, which only KEDA supports (keda.enabled)." $at) }}
{{- end }}
{{- if gt (int $g.autoscaling.minReplicas) (int $g.autoscaling.maxReplicas) }}
{{- $errors = append $errors (printf "%s: autoscaling.minReplicas (%d) is above autoscaling.maxReplicas (%d)." $at (int $g.autoscaling.minReplicas) (int $g.autoscaling.maxReplicas)) }}
{{- end }}
{{- end }}

{{- /* The producer finishes outstanding publishes after its preStop sleep. */}}
{{- $p := $v.producer }}
{{- $needed := add (int $p.preStopSleepSeconds) (int $p.publish.timeoutSeconds) }}
{{- if and (gt (int $p.terminationGracePeriodSeconds) 0) (lt (int $p.terminationGracePeriodSeconds) $needed) }}
{{- $errors = append $errors (printf "producer.terminationGracePeriodSeconds (%d) is below producer.preStopSleepSeconds (%d) + producer.publish.timeoutSeconds (%d): publishes in flight at shutdown could be cut off." (int $p.terminationGracePeriodSeconds) (int $p.preStopSleepSeconds) (int $p.publish.timeoutSeconds)) }}
{{- end }}

{{- /* TLS files with a plain URL would give a false sense of encryption; the services refuse them. */}}
{{- if and $v.rabbitmq.enabled $v.config.amqp.tls.existingSecret }}
{{- $errors = append $errors "config.amqp.tls.existingSecret is set, but the bundled RabbitMQ listens without TLS: use externalBroker with an amqps:// URL, or leave it empty." }}
{{- end }}
{{- if and $v.config.amqp.tls.existingSecret (ne (empty $v.config.amqp.tls.certKey) (empty $v.config.amqp.tls.keyKey)) }}
{{- $errors = append $errors "config.amqp.tls.certKey and keyKey: set both (a client certificate and its key) or neither." }}
{{- end }}

{{- if $errors }}
{{- fail (printf "\n\nsluice: %d invalid value(s):\n  - %s\n" (len $errors) (join "\n  - " $errors)) }}
{{- end }}
{{- end }}
