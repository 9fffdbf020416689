{{/*
Named templates shared by this chart and its subcharts (template names are global across a
chart and its subcharts). They read only .Release, .Chart and .Values.global, which every chart
of the tree has.
*/}}

{{/* The prefix of every name: the release name, with -elastic-jupyter unless it has it. */}}
{{- define "elastic-jupyter.fullname" -}}
{{- if .Values.global.fullnameOverride -}}
{{- .Values.global.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else if contains "elastic-jupyter" .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-elastic-jupyter" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels every object carries. Call with (dict "ctx" $ "component" "controller"). */}}
{{- define "elastic-jupyter.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: elastic-jupyter
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: elastic-jupyter
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end -}}

{{/* The labels a workload selects its pods by. Same arguments as elastic-jupyter.labels. */}}
{{- define "elastic-jupyter.selectorLabels" -}}
app.kubernetes.io/name: elastic-jupyter
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* This project's image reference: repository, then @digest or :tag (default appVersion). */}}
{{- define "elastic-jupyter.image" -}}
{{- $img := .Values.global.image -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (default .Chart.AppVersion $img.tag) -}}
{{- end -}}
{{- end -}}

{{/* Pod security context of our own pods: non-root, RuntimeDefault seccomp. */}}
{{- define "elastic-jupyter.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container security context of our own containers. */}}
{{- define "elastic-jupyter.securityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* The webhook's Service name (the certificate and the webhook configurations name it). */}}
{{- define "elastic-jupyter.webhookService" -}}
{{- printf "%s-webhook" (include "elastic-jupyter.fullname" .) -}}
{{- end -}}

{{/* The Secret that holds the webhook's serving certificate. */}}
{{- define "elastic-jupyter.webhookCertSecret" -}}
{{- printf "%s-webhook-tls" (include "elastic-jupyter.fullname" .) -}}
{{- end -}}

{{/* imagePullSecrets of our pods. */}}
{{- define "elastic-jupyter.imagePullSecrets" -}}
{{- with .Values.global.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}
