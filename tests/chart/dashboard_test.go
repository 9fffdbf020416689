package chart

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/elastic-jupyter/elastic-jupyter/internal/testenv"
)

// dashboardFile is the Grafana dashboard the chart ships.
var dashboardFile = filepath.Join(chartDir, "files", "dashboards", "elastic-jupyter.json")

// The dashboard's ConfigMap: the sidecar's label (kept when more are added), the annotations
// and namespace asked for, and the chart's dashboard file as it is.
func TestGrafanaDashboardConfigMap(t *testing.T) {
	want, err := os.ReadFile(dashboardFile)
	require.NoError(t, err)
	for name, c := range map[string]struct {
		set       map[string]string
		namespace string
		labels    map[string]string
	}{
		"defaults": {set: map[string]string{"grafana.dashboard.enabled": "true"}, namespace: namespace, labels: map[string]string{"grafana_dashboard": "1"}},
		"another namespace, a label and a folder": {
			set: map[string]string{
				"grafana.dashboard.enabled": "true", "grafana.dashboard.namespace": "monitoring",
				"grafana.dashboard.labels.team": "platform", "grafana.dashboard.annotations.grafana_folder": "GPUs",
			},
			namespace: "monitoring", labels: map[string]string{"grafana_dashboard": "1", "team": "platform"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			cm := named[corev1.ConfigMap](t, objects(t, render(t, nil, c.set)), "ConfigMap", c.namespace, "ej-elastic-jupyter-dashboard")
			for k, v := range c.labels {
				assert.Equal(t, v, cm.Labels[k], "label %s", k)
			}
			assert.Equal(t, "elastic-jupyter", cm.Labels["app.kubernetes.io/part-of"])
			if f, ok := c.set["grafana.dashboard.annotations.grafana_folder"]; ok {
				assert.Equal(t, f, cm.Annotations["grafana_folder"])
			}
			require.Contains(t, cm.Data, "elastic-jupyter.json")
			assert.JSONEq(t, string(want), cm.Data["elastic-jupyter.json"], "the ConfigMap carries the chart's dashboard file")
		})
	}
}

// metric is a Prometheus metric the project's Go code exports.
type metric struct {
	kind   string // Counter, Gauge, Histogram or Summary
	labels map[string]bool
}

// exportedMetrics reads the metrics the controller and the gateway export out of their Go source:
// each prometheus.New<Kind>[Vec](prometheus.<Kind>Opts{Name: ..., ConstLabels: ...}, labels).
func exportedMetrics(t *testing.T) map[string]metric {
	t.Helper()
	out := map[string]metric{}
	fset := token.NewFileSet()
	newMetric := regexp.MustCompile(`^New(Counter|Gauge|Histogram|Summary)(Vec)?$`)
	for _, dir := range []string{"controller", "gateway"} {
		files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), dir, "*.go"))
		require.NoError(t, err)
		found := 0
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			file, err := parser.ParseFile(fset, f, nil, 0)
			require.NoError(t, err)
			ast.Inspect(file, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				fn, ok := call.Fun.(*ast.SelectorExpr)
				if !ok || !isIdent(fn.X, "prometheus") || !newMetric.MatchString(fn.Sel.Name) || len(call.Args) == 0 {
					return true
				}
				opts, ok := call.Args[0].(*ast.CompositeLit)
				if !ok {
					return true
				}
				m := metric{kind: newMetric.FindStringSubmatch(fn.Sel.Name)[1], labels: map[string]bool{}}
				var name string
				for _, e := range opts.Elts {
					kv, ok := e.(*ast.KeyValueExpr)
					if !ok {
						continue
					}
					switch {
					case isIdent(kv.Key, "Name"):
						name = stringLit(t, fset, kv.Value)
					case isIdent(kv.Key, "ConstLabels"):
						for _, l := range mapKeys(t, fset, kv.Value) {
							m.labels[l] = true
						}
					}
				}
				require.NotEmpty(t, name, "%s: %s has a Name", fset.Position(call.Pos()), fn.Sel.Name)
				if len(call.Args) > 1 {
					list, ok := call.Args[1].(*ast.CompositeLit)
					require.True(t, ok, "%s: %s's labels are a []string literal", fset.Position(call.Pos()), name)
					for _, e := range list.Elts {
						m.labels[stringLit(t, fset, e)] = true
					}
				}
				out[name] = m
				found++
				return true
			})
		}
		require.NotZero(t, found, "the %s exports metrics", dir)
	}
	return out
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

func stringLit(t *testing.T, fset *token.FileSet, e ast.Expr) string {
	t.Helper()
	lit, ok := e.(*ast.BasicLit)
	require.True(t, ok && lit.Kind == token.STRING, "%s: a string literal", fset.Position(e.Pos()))
	s, err := strconv.Unquote(lit.Value)
	require.NoError(t, err)
	return s
}

// mapKeys are the keys of a prometheus.Labels literal, or of the one a local variable is set to.
func mapKeys(t *testing.T, fset *token.FileSet, e ast.Expr) []string {
	t.Helper()
	if id, ok := e.(*ast.Ident); ok {
		require.NotNil(t, id.Obj, "%s: %s is a local variable", fset.Position(e.Pos()), id.Name)
		assign, ok := id.Obj.Decl.(*ast.AssignStmt)
		require.True(t, ok, "%s: %s is set with :=", fset.Position(e.Pos()), id.Name)
		for i, lhs := range assign.Lhs {
			if isIdent(lhs, id.Name) {
				return mapKeys(t, fset, assign.Rhs[i])
			}
		}
	}
	lit, ok := e.(*ast.CompositeLit)
	require.True(t, ok, "%s: labels are a literal", fset.Position(e.Pos()))
	var keys []string
	for _, el := range lit.Elts {
		keys = append(keys, stringLit(t, fset, el.(*ast.KeyValueExpr).Key))
	}
	return keys
}

// grafanaDatasource is a Grafana data source reference.
type grafanaDatasource struct{ Type, UID string }

// grafanaDashboard is what the tests read of a Grafana dashboard's JSON model.
type grafanaDashboard struct {
	UID           string
	Title         string
	SchemaVersion int
	Templating    struct {
		List []struct {
			Name, Type, Definition string
			Query                  any
			Datasource             *grafanaDatasource
			Multi, IncludeAll      bool
		}
	}
	Panels []struct {
		ID          int
		Type, Title string
		Datasource  *grafanaDatasource
		GridPos     struct{ X, Y, W, H int }
		FieldConfig struct{ Defaults struct{ Unit string } }
		Targets     []struct {
			RefID        string
			Expr         string
			LegendFormat string
			Datasource   *grafanaDatasource
		}
	}
}

var (
	// metricToken is any name of this project's metrics in a query.
	metricToken = regexp.MustCompile(`elastic_jupyter_[a-z0-9_]+`)
	// selector is a metric name with its label matchers (every query of the dashboard filters).
	selector = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}`)
	matcher  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"`)
	grouping = regexp.MustCompile(`\bby\s*\(([^)]*)\)`)
	legend   = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)
	quantile = regexp.MustCompile(`histogram_quantile\(\s*(0\.[0-9]+)\s*,\s*sum by \(([^)]*)\)\s*\(rate\(([a-z0-9_]+)_bucket\{`)
)

// series is the metric m of exported that a series name is (histogram series end in _bucket,
// _sum or _count), and whether it is a histogram's _bucket.
func series(exported map[string]metric, name string) (string, metric, bool) {
	if m, ok := exported[name]; ok {
		return name, m, false
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base := strings.TrimSuffix(name, suffix)
		if m, ok := exported[base]; ok && base != name && (m.kind == "Histogram" || m.kind == "Summary") {
			return base, m, suffix == "_bucket"
		}
	}
	return "", metric{}, false
}

// The dashboard is Grafana JSON whose queries name only metrics the code exports (read from the
// Go source, so a rename breaks this test), with labels those metrics have, each filtered by the
// namespace variable (and the gateway variable where it has a gateway); counters in rate or
// increase, histograms as p50 and p95 over their buckets' rate; and it shows every metric.
func TestGrafanaDashboardQueriesTheExportedMetrics(t *testing.T) {
	exported := exportedMetrics(t)
	for _, name := range []string{"elastic_jupyter_gpu_seconds_held_total", "elastic_jupyter_gpu_seconds_given_back_total",
		"elastic_jupyter_kernels", "elastic_jupyter_gpu_wait_seconds", "elastic_jupyter_kernel_start_seconds",
		"elastic_jupyter_kernel_resume_seconds", "elastic_jupyter_culls_total"} {
		require.Contains(t, exported, name, "the Go source is read")
	}
	assert.Equal(t, map[string]bool{"namespace": true, "gateway": true, "policy": true, "reason": true},
		exported["elastic_jupyter_culls_total"].labels, "constant and variable labels are read")

	data, err := os.ReadFile(dashboardFile)
	require.NoError(t, err)
	var d grafanaDashboard
	require.NoError(t, json.Unmarshal(data, &d), "the dashboard is JSON")
	assert.NotEmpty(t, d.Title)
	assert.Regexp(t, `^[a-zA-Z0-9_-]{1,40}$`, d.UID, "a fixed uid, so links and the sidecar's updates keep the dashboard")
	assert.GreaterOrEqual(t, d.SchemaVersion, 36)
	assert.LessOrEqual(t, d.SchemaVersion, 41)
	assert.NotContains(t, string(data), "${DS_", "no import-time inputs: the sidecar loads the file as it is")

	vars := map[string]int{}
	for i, v := range d.Templating.List {
		vars[v.Name] = i
	}
	require.Contains(t, vars, "datasource")
	ds := d.Templating.List[vars["datasource"]]
	assert.Equal(t, "datasource", ds.Type)
	assert.Equal(t, "prometheus", ds.Query)
	ours := &grafanaDatasource{Type: "prometheus", UID: "${datasource}"}
	// Every PromQL of the dashboard; panel queries are filtered by the variables, the variables'
	// own queries are not.
	type query struct {
		expr  string
		panel bool
	}
	var queries []query
	for _, name := range []string{"namespace", "gateway"} {
		require.Contains(t, vars, name)
		v := d.Templating.List[vars[name]]
		assert.Equal(t, "query", v.Type, name)
		assert.Equal(t, ours, v.Datasource, name)
		assert.True(t, v.Multi && v.IncludeAll, "%s: several or all may be chosen", name)
		m := regexp.MustCompile(`^label_values\((.*), ([a-z_]+)\)$`).FindStringSubmatch(v.Definition)
		require.NotNil(t, m, "%s: %s", name, v.Definition)
		assert.Equal(t, name, m[2], "%s lists the %s label", name, name)
		queries = append(queries, query{m[1], false})
	}

	ids := map[int]bool{}
	cells := map[[2]int]int{}
	used := map[string]bool{}
	for _, p := range d.Panels {
		assert.False(t, ids[p.ID], "panel id %d is unique", p.ID)
		ids[p.ID] = true
		assert.Equal(t, ours, p.Datasource, "%s queries the chosen data source", p.Title)
		g := p.GridPos
		assert.True(t, g.W > 0 && g.H > 0 && g.X >= 0 && g.X+g.W <= 24, "%s fits the 24 columns: %+v", p.Title, g)
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := cells[[2]int{x, y}]; ok {
					t.Errorf("panels %d and %d overlap", other, p.ID)
				}
				cells[[2]int{x, y}] = p.ID
			}
		}
		require.NotEmpty(t, p.Targets, p.Title)
		refs := map[string]bool{}
		for _, q := range p.Targets {
			assert.False(t, refs[q.RefID], "%s: refId %s is unique", p.Title, q.RefID)
			refs[q.RefID] = true
			assert.Equal(t, ours, q.Datasource, p.Title)
			queries = append(queries, query{q.Expr, true})
			// A legend names only labels the query keeps.
			var kept []string
			for _, by := range grouping.FindAllStringSubmatch(q.Expr, -1) {
				kept = append(kept, splitLabels(by[1])...)
			}
			for _, l := range legend.FindAllStringSubmatch(q.LegendFormat, -1) {
				assert.Contains(t, kept, l[1], "%s: legend %q names a label its query keeps: %s", p.Title, q.LegendFormat, q.Expr)
			}
		}
	}

	for _, qq := range queries {
		q := qq.expr
		for _, loc := range metricToken.FindAllStringIndex(q, -1) {
			tok := q[loc[0]:loc[1]]
			name, _, _ := series(exported, tok)
			require.NotEmpty(t, name, "%s is a metric the code exports (or one of a histogram's series): %s", tok, q)
			used[name] = true
			if qq.panel {
				assert.True(t, strings.HasPrefix(q[loc[1]:], "{"), "%s comes with its label matchers: %s", tok, q)
			}
		}
		var inQuery []metric
		for _, loc := range selector.FindAllStringSubmatchIndex(q, -1) {
			tok, matchers := q[loc[2]:loc[3]], q[loc[4]:loc[5]]
			name, m, bucket := series(exported, tok)
			require.NotEmpty(t, name, "%s is a metric the code exports: %s", tok, q)
			inQuery = append(inQuery, m)
			before := q[:loc[0]]
			inRate := strings.HasSuffix(before, "rate(") || strings.HasSuffix(before, "increase(")
			switch m.kind {
			case "Counter":
				assert.True(t, inRate, "counter %s is read through rate or increase: %s", tok, q)
			case "Gauge":
				assert.False(t, inRate, "gauge %s is read as it is: %s", tok, q)
			case "Histogram":
				assert.True(t, bucket && inRate, "histogram %s is read as its buckets' rate: %s", name, q)
			}
			have := maps.Clone(m.labels)
			if bucket {
				have["le"] = true
			}
			filtered := map[string]string{}
			for _, mm := range matcher.FindAllStringSubmatch(matchers, -1) {
				assert.True(t, have[mm[1]], "%s has label %s: %s", name, mm[1], q)
				filtered[mm[1]] = mm[2]
			}
			if !qq.panel {
				continue
			}
			assert.Equal(t, "=~", filtered["namespace"], "%s is filtered by the namespace variable: %s", name, q)
			assert.Contains(t, matchers, `namespace=~"$namespace"`, q)
			if m.labels["gateway"] {
				assert.Contains(t, matchers, `gateway=~"$gateway"`, "%s is filtered by the gateway variable: %s", name, q)
			} else {
				assert.NotContains(t, matchers, "gateway", "%s has no gateway label to filter by: %s", name, q)
			}
		}
		for _, by := range grouping.FindAllStringSubmatch(q, -1) {
			for _, l := range splitLabels(by[1]) {
				for _, m := range inQuery {
					assert.True(t, m.labels[l] || l == "le", "every metric of the query has label %s: %s", l, q)
				}
			}
		}
	}

	names := slices.Sorted(maps.Keys(exported))
	for _, name := range names {
		assert.True(t, used[name], "the dashboard shows %s", name)
	}
	for _, name := range names {
		if exported[name].kind != "Histogram" {
			continue
		}
		got := map[string]bool{}
		for _, qq := range queries {
			q := qq.expr
			for _, m := range quantile.FindAllStringSubmatch(q, -1) {
				if m[3] == name {
					assert.Contains(t, splitLabels(m[2]), "le", "the quantile of %s keeps le: %s", name, q)
					got[m[1]] = true
				}
			}
		}
		assert.Equal(t, map[string]bool{"0.5": true, "0.95": true}, got, "%s is shown as p50 and p95", name)
	}

	// The panels the dashboard is for.
	panelOf := func(pred func(expr string) bool) string {
		for _, p := range d.Panels {
			for _, q := range p.Targets {
				if pred(q.Expr) {
					return p.Type + " " + p.FieldConfig.Defaults.Unit
				}
			}
		}
		return ""
	}
	held, given := "elastic_jupyter_gpu_seconds_held_total", "elastic_jupyter_gpu_seconds_given_back_total"
	assert.Equal(t, "timeseries none", panelOf(func(q string) bool {
		return strings.Contains(q, held) && strings.Contains(q, "by (namespace, gateway, state)")
	}), "GPU time held, busy and idle, over time by namespace and gateway")
	assert.Equal(t, "timeseries none", panelOf(func(q string) bool {
		return strings.Contains(q, given) && !strings.Contains(q, held) && strings.Contains(q, "by (namespace, gateway)")
	}), "GPU time given back over time by namespace and gateway")
	for _, typ := range []string{"timeseries", "stat"} {
		assert.Equal(t, typ+" percentunit", panelOf(func(q string) bool {
			num, den, ok := strings.Cut(q, "\n/\n")
			return ok && strings.Contains(num, given) && strings.Contains(den, held) && strings.Contains(den, given) &&
				strings.Contains(den, "+") && (typ == "stat") == strings.Contains(q, "$__range")
		}), "%s: the share of GPU time given back, given back / (held + given back)", typ)
	}
	assert.Equal(t, "timeseries none", panelOf(func(q string) bool {
		return strings.Contains(q, "by (phase) (elastic_jupyter_kernels{")
	}), "kernels by phase")
	assert.Equal(t, "timeseries none", panelOf(func(q string) bool {
		return strings.Contains(q, "by (policy, reason)") && strings.Contains(q, "elastic_jupyter_culls_total")
	}), "culls by policy and reason")
}

// splitLabels splits a PromQL label list ("le, namespace").
func splitLabels(list string) []string {
	var out []string
	for _, l := range strings.Split(list, ",") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
