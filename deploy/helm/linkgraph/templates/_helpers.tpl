{{/*
Names. linkgraph.fullname is the release-scoped prefix of every object; the component objects
are "<fullname>-worker", "<fullname>-shard", "<fullname>-gateway" and "<fullname>-rank". The
prefix is cut to 45 characters so that a StatefulSet pod name ("<fullname>-shard-12") and its
controller-revision label stay within Kubernetes' 63-character limits, and the CronJob's name
("<fullname>-rank", 50 at most) within the 52 characters a CronJob may have.
*/}}
{{- define "linkgraph.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "linkgraph.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 45 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 45 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 45 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* linkgraph.componentName: (dict "ctx" $ "component" "worker") -> "<fullname>-worker" */}}
{{- define "linkgraph.componentName" -}}
{{- printf "%s-%s" (include "linkgraph.fullname" .ctx) .component }}
{{- end }}

{{- define "linkgraph.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels. Every object carries the standard app.kubernetes.io labels, component included
(worker, shard, gateway, rank, or the shared objects' own: serviceaccount, metrics). Selectors
use name, instance and component only: they are immutable on Deployments and StatefulSets, so
nothing that changes between releases (version, chart) may be in them.
Call with (dict "ctx" $ "component" "worker").
*/}}
{{- define "linkgraph.selectorLabels" -}}
app.kubernetes.io/name: {{ include "linkgraph.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "linkgraph.labels" -}}
helm.sh/chart: {{ include "linkgraph.chart" .ctx }}
{{ include "linkgraph.selectorLabels" . }}
app.kubernetes.io/version: {{ (default .ctx.Chart.AppVersion .ctx.Values.image.tag) | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: linkgraph
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "linkgraph.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "linkgraph.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "linkgraph.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
NATS. With the NATS subchart (nats.enabled) the URL is its client Service, named as that
chart names it ("<release>-nats" unless the release name already contains "nats", or
nats.fullnameOverride); otherwise nats.url.
*/}}
{{- define "linkgraph.natsFullname" -}}
{{- if .Values.nats.fullnameOverride }}
{{- .Values.nats.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains "nats" .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-nats" .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "linkgraph.natsURL" -}}
{{- if .Values.nats.enabled }}
{{- printf "nats://%s.%s.svc:4222" (include "linkgraph.natsFullname" .) .Release.Namespace }}
{{- else }}
{{- required "nats.url is required when nats.enabled is false" .Values.nats.url }}
{{- end }}
{{- end }}

{{/*
The NATS monitoring endpoint KEDA polls. In a NATS cluster KEDA asks every server for its
share of the consumer through "<server name>.<endpoint>", which resolves only through the
headless Service, so that is what the subchart case points at.
*/}}
{{- define "linkgraph.natsMonitoringEndpoint" -}}
{{- if .Values.worker.keda.natsServerMonitoringEndpoint }}
{{- .Values.worker.keda.natsServerMonitoringEndpoint }}
{{- else if .Values.nats.enabled }}
{{- printf "%s-headless.%s.svc:8222" (include "linkgraph.natsFullname" .) .Release.Namespace }}
{{- else }}
{{- fail "worker.keda.natsServerMonitoringEndpoint is required with worker.keda.enabled and an external NATS (host:port of the NATS monitoring port, e.g. nats-headless.nats.svc:8222)" }}
{{- end }}
{{- end }}

{{/*
Mount paths of the secrets. Flags and mounts are built from the same definitions, so they
cannot drift apart.
*/}}
{{- define "linkgraph.natsCredsDir" -}}/etc/linkgraph/nats-creds{{- end }}
{{- define "linkgraph.natsTLSDir" -}}/etc/linkgraph/nats-tls{{- end }}
{{- define "linkgraph.tokenDir" -}}/etc/linkgraph/token{{- end }}
{{- define "linkgraph.tlsDir" -}}/etc/linkgraph/tls{{- end }}

{{/*
linkgraph.natsFlags: the NATS connection flags every role and the seed command share, one
"--flag=value" per line (no list dashes).
*/}}
{{- define "linkgraph.natsFlags" -}}
--nats={{ include "linkgraph.natsURL" . }}
{{- if .Values.nats.credsSecret }}
--nats-creds={{ include "linkgraph.natsCredsDir" . }}/nats.creds
{{- end }}
{{- with .Values.nats.tls.secret }}
{{- if $.Values.nats.tls.ca }}
--nats-tls-ca={{ include "linkgraph.natsTLSDir" $ }}/ca.crt
{{- end }}
{{- if $.Values.nats.tls.cert }}
--nats-tls-cert={{ include "linkgraph.natsTLSDir" $ }}/tls.crt
--nats-tls-key={{ include "linkgraph.natsTLSDir" $ }}/tls.key
{{- end }}
{{- end }}
{{- end }}

{{/*
linkgraph.commonArgs: (dict "ctx" $ "values" .Values.worker "grace" true) -> the args list
items the roles share: NATS, log level, and with "grace" the drain time. Workers and gateways
take --shutdown-grace; a shard node has no such flag: on SIGTERM it finishes the batches in
hand, commits them and closes Pebble.
*/}}
{{- define "linkgraph.commonArgs" -}}
{{- range (include "linkgraph.natsFlags" .ctx | splitList "\n") }}
- {{ . | quote }}
{{- end }}
- {{ printf "--log-level=%s" (default .ctx.Values.logLevel .values.logLevel) | quote }}
{{- if .grace }}
- {{ printf "--shutdown-grace=%ds" (int .ctx.Values.shutdownGraceSeconds) | quote }}
{{- end }}
{{- end }}

{{/* linkgraph.extraArgs: (component values) -> extraArgs list items */}}
{{- define "linkgraph.extraArgs" -}}
{{- range .extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}

{{/* The NATS secret volumes and their mounts, for every role's pod. */}}
{{- define "linkgraph.natsVolumes" -}}
{{- if .Values.nats.credsSecret }}
- name: nats-creds
  secret:
    secretName: {{ .Values.nats.credsSecret }}
    defaultMode: 0440
    items:
      - key: {{ .Values.nats.credsKey }}
        path: nats.creds
{{- end }}
{{- if .Values.nats.tls.secret }}
- name: nats-tls
  secret:
    secretName: {{ .Values.nats.tls.secret }}
    defaultMode: 0440
    items:
      {{- if .Values.nats.tls.ca }}
      - key: {{ .Values.nats.tls.ca }}
        path: ca.crt
      {{- end }}
      {{- if .Values.nats.tls.cert }}
      - key: {{ .Values.nats.tls.cert }}
        path: tls.crt
      - key: {{ required "nats.tls.key is required with nats.tls.cert" .Values.nats.tls.key }}
        path: tls.key
      {{- end }}
{{- end }}
{{- end }}

{{- define "linkgraph.natsVolumeMounts" -}}
{{- if .Values.nats.credsSecret }}
- name: nats-creds
  mountPath: {{ include "linkgraph.natsCredsDir" . }}
  readOnly: true
{{- end }}
{{- if .Values.nats.tls.secret }}
- name: nats-tls
  mountPath: {{ include "linkgraph.natsTLSDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/*
linkgraph.env: (dict "ctx" $ "values" .Values.worker) -> env list items. GOMEMLIMIT is the
container's memory limit in bytes, so the Go runtime collects harder as the heap nears it
instead of growing into the kernel's OOM kill.
*/}}
{{- define "linkgraph.env" -}}
{{- if dig "limits" "memory" "" (default (dict) .values.resources) }}
- name: GOMEMLIMIT
  valueFrom:
    resourceFieldRef:
      resource: limits.memory
      divisor: "1"
{{- end }}
{{- with .values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
linkgraph.podSpecCommon: (dict "ctx" $ "values" .Values.worker) -> the pod spec fields every
role shares. terminationGracePeriodSeconds must exceed --shutdown-grace, or the kubelet kills
the process in the middle of its drain. With "batch" true (the rank CronJob's pods) there is
no drain to wait for: rank stops at once on SIGTERM, so shutdownGraceSeconds does not bind it.
*/}}
{{- define "linkgraph.podSpecCommon" -}}
{{- $grace := int .ctx.Values.shutdownGraceSeconds }}
{{- $term := int .values.terminationGracePeriodSeconds }}
{{- if and (not (get . "batch")) (le $term $grace) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed shutdownGraceSeconds (%d): the kubelet would kill the process in the middle of its drain" $term $grace) }}
{{- end }}
serviceAccountName: {{ include "linkgraph.serviceAccountName" .ctx }}
automountServiceAccountToken: {{ .ctx.Values.serviceAccount.automountToken }}
terminationGracePeriodSeconds: {{ $term }}
securityContext:
  {{- toYaml .ctx.Values.podSecurityContext | nindent 2 }}
{{- with .ctx.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end }}

{{/* linkgraph.podAnnotations: (dict "ctx" $ "values" .Values.worker) */}}
{{- define "linkgraph.podAnnotations" -}}
{{- with (merge (dict) (default (dict) .values.podAnnotations) (default (dict) .ctx.Values.podAnnotations)) }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
Checks of values that the schema cannot express. Included from every workload template so
a bad combination fails the render, whichever templates a tool renders.
*/}}
{{- define "linkgraph.validate" -}}
{{- $nodes := int .Values.shard.replicas }}
{{- $shards := int .Values.shardCount }}
{{- if lt $nodes 1 }}
{{- fail "shard.replicas must be at least 1" }}
{{- end }}
{{- if gt $nodes $shards }}
{{- fail (printf "shard.replicas (%d) must not exceed shardCount (%d): a shard node owns at least one shard" $nodes $shards) }}
{{- end }}
{{- $r := int .Values.streamReplicas }}
{{- if or (lt $r 1) (gt $r 5) }}
{{- fail (printf "streamReplicas (%d) must be between 1 and 5 (JetStream's limit), and at most the NATS cluster's size" $r) }}
{{- end }}
{{- end }}
