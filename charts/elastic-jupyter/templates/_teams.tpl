{{/*
elastic-jupyter.merge: base deep-merged with over, as YAML. Unlike sprig's merge functions it
lets a team set a default's true to false and a number to 0 (cullIdleTimeout: 0,
maxPerKernel: 0). Lists are replaced, not appended.
*/}}
{{- define "elastic-jupyter.merge" -}}
{{- $out := deepCopy .base -}}
{{- range $k, $v := .over -}}
{{- if and (kindIs "map" $v) (kindIs "map" (index $out $k)) -}}
{{- $_ := set $out $k (include "elastic-jupyter.merge" (dict "base" (index $out $k) "over" $v) | fromYaml) -}}
{{- else -}}
{{- $_ := set $out $k $v -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/*
elastic-jupyter.teams: every team of .Values.teams merged over .Values.teamDefaults, checked,
as YAML {teams: [...]}. Fails with a message that names the team and the value to fix.
*/}}
{{- define "elastic-jupyter.teams" -}}
{{- include "elastic-jupyter.checkDefaultGPUs" (dict "where" "teamDefaults" "gpu" .Values.teamDefaults.gpu) -}}
{{- $teams := list -}}
{{- $seen := dict -}}
{{- range $i, $t := .Values.teams -}}
{{- $team := include "elastic-jupyter.merge" (dict "base" $.Values.teamDefaults "over" $t) | fromYaml -}}
{{- range $team.namespaces -}}
{{- if hasKey $seen . -}}
{{- fail (printf "teams[%d] (%s): namespace %q already belongs to team %s; a namespace belongs to one team" $i $team.name . (get $seen .)) -}}
{{- end -}}
{{- $_ := set $seen . $team.name -}}
{{- end -}}
{{- $res := $team.gpu.resourceName -}}
{{- if and (not (contains "gpu" $res)) (not (has $res $.Values.controller.gpuResources)) -}}
{{- fail (printf "teams[%d] (%s): gpu.resourceName %q does not contain \"gpu\": add it to controller.gpuResources so the controller counts it as GPUs" $i $team.name $res) -}}
{{- end -}}
{{- include "elastic-jupyter.checkDefaultGPUs" (dict "where" (printf "teams[%d] (%s)" $i $team.name) "gpu" $team.gpu) -}}
{{- $specs := list -}}
{{- range $j, $k := $team.kernelspecs -}}
{{- $spec := include "elastic-jupyter.merge" (dict "base" $team.kernelDefaults "over" $k) | fromYaml -}}
{{- /* A kernelspec without gpus gets gpu.defaultPerKernel, checked above; 0 is a count too. */ -}}
{{- if and (hasKey $spec "gpus") (gt (int $spec.gpus) (int $team.gpu.maxPerKernel)) -}}
{{- fail (printf "teams[%d] (%s): kernelspecs[%d] (%s) asks %d GPUs but gpu.maxPerKernel is %d: lower gpus or raise the team's maxPerKernel" $i $team.name $j $spec.name (int $spec.gpus) (int $team.gpu.maxPerKernel)) -}}
{{- end -}}
{{- /* state: every kernelspec of a team with state gets spec.state {volume, maxBytes} unless
it says state: {enabled: false}; its own maxBytes overrides the team's. A kernelspec that asks for
state ({enabled: true} or a maxBytes) in a team without state is refused: there is no claim. */ -}}
{{- $ks := $spec.state | default dict -}}
{{- $asks := hasKey $ks "maxBytes" -}}
{{- $on := $team.state.enabled -}}
{{- if hasKey $ks "enabled" -}}
{{- $asks = $ks.enabled -}}
{{- $on = and $on $ks.enabled -}}
{{- end -}}
{{- if and $asks (not $team.state.enabled) -}}
{{- fail (printf "teams[%d] (%s): kernelspecs[%d] (%s) sets state but the team's state.enabled is false, so there is no claim to keep its kernels' variables on: set the team's state.enabled: true or remove the kernelspec's state" $i $team.name $j $spec.name) -}}
{{- end -}}
{{- $_ := unset $spec "state" -}}
{{- if $on -}}
{{- $max := $team.state.maxBytes -}}
{{- if and (hasKey $ks "maxBytes") (not (kindIs "invalid" $ks.maxBytes)) -}}
{{- $max = $ks.maxBytes -}}
{{- end -}}
{{- $_ := set $spec "state" (dict "volume" $team.state.claimName "maxBytes" $max) -}}
{{- end -}}
{{- $specs = append $specs $spec -}}
{{- end -}}
{{- $_ := set $team "kernelspecs" $specs -}}
{{- $teams = append $teams $team -}}
{{- end -}}
{{- toYaml (dict "teams" $teams) -}}
{{- end -}}

{{/*
elastic-jupyter.checkDefaultGPUs: fails unless gpu.defaultPerKernel is at most gpu.maxPerKernel.
The webhook refuses such a policy, and with it every kernel pod of every team, until it is fixed.
Call with (dict "where" "teams[0] (vision)" "gpu" $team.gpu).
*/}}
{{- define "elastic-jupyter.checkDefaultGPUs" -}}
{{- if gt (int .gpu.defaultPerKernel) (int .gpu.maxPerKernel) -}}
{{- fail (printf "%s: gpu.defaultPerKernel is %d but gpu.maxPerKernel is %d: the webhook would refuse the policy and every kernel pod; lower defaultPerKernel or raise maxPerKernel" .where (int .gpu.defaultPerKernel) (int .gpu.maxPerKernel)) -}}
{{- end -}}
{{- end -}}

{{/*
elastic-jupyter.quantity: a quantity from values, "10Gi" or a number of bytes (YAML numbers reach
templates as floats: 1073741824 would print as 1.073741824e+09).
*/}}
{{- define "elastic-jupyter.quantity" -}}
{{- if kindIs "string" . -}}
{{- quote . -}}
{{- else -}}
{{- int64 . -}}
{{- end -}}
{{- end -}}
