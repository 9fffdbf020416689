package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// kernelModel is a kernel as the Jupyter REST API describes it. Suspended and Reason are
// ours: Jupyter Server ignores fields it does not know.
type kernelModel struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	LastActivity   string `json:"last_activity"`
	ExecutionState string `json:"execution_state"`
	Connections    int    `json:"connections"`
	Suspended      bool   `json:"suspended"`
	// Reason says what a starting kernel waits for, or why a dead one died.
	Reason string `json:"reason,omitempty"`
}

// httpError is an error with an HTTP status.
type httpError struct {
	code   int
	reason string
	err    error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

// Handler returns the gateway's HTTP API.
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api", g.apiVersion)
	mux.HandleFunc("GET /api/{$}", g.apiVersion)
	mux.HandleFunc("GET /api/kernelspecs", g.listSpecs)
	mux.HandleFunc("GET /api/kernelspecs/{name}", g.getSpec)
	mux.HandleFunc("GET /kernelspecs/{name}/{file...}", g.specResource)
	mux.HandleFunc("GET /api/kernels", g.listKernels)
	mux.HandleFunc("POST /api/kernels", g.startKernel)
	mux.HandleFunc("GET /api/kernels/{id}", g.getKernel)
	mux.HandleFunc("DELETE /api/kernels/{id}", g.deleteKernel)
	mux.HandleFunc("POST /api/kernels/{id}/interrupt", g.interruptKernel)
	mux.HandleFunc("POST /api/kernels/{id}/restart", g.restartKernel)
	mux.HandleFunc("GET /api/kernels/{id}/channels", g.channels)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &httpError{code: 404, reason: "Not Found", err: fmt.Errorf("no such endpoint: %s %s", r.Method, r.URL.Path)})
	})
	return g.authenticate(mux)
}

// authenticate tells who the client is from its token (Authorization: token T; ?token=T
// only on websocket upgrades, which browsers cannot give headers) and refuses a missing or
// wrong one.
func (g *Gateway) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// GET /api tells only the version, as Jupyter Server's does: probes need no token.
		if r.Method == http.MethodGet && (r.URL.Path == "/api" || r.URL.Path == "/api/") {
			next.ServeHTTP(w, r)
			return
		}
		got := ""
		if websocket.IsWebSocketUpgrade(r) {
			got = r.URL.Query().Get("token")
		}
		if auth := r.Header.Get("Authorization"); auth != "" {
			scheme, value, _ := strings.Cut(auth, " ")
			if strings.EqualFold(scheme, "token") || strings.EqualFold(scheme, "bearer") {
				got = strings.TrimSpace(value)
			}
		}
		who, ok := g.auth.Authenticate(got)
		if !ok {
			writeError(w, &httpError{code: 403, reason: "Forbidden",
				err: errors.New("missing or wrong token: send 'Authorization: token <token>' (Jupyter Server: --GatewayClient.auth_token); ?token= is accepted only on websocket requests")})
			return
		}
		next.ServeHTTP(w, r.WithContext(withIdentity(r.Context(), who)))
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers with Jupyter's error shape, {reason, message}.
func writeError(w http.ResponseWriter, err error) {
	var he *httpError
	if !errors.As(err, &he) {
		code, reason := 500, "Internal Server Error"
		switch {
		case errors.Is(err, ErrNotFound):
			code, reason = 404, "Not Found"
		case errors.Is(err, context.DeadlineExceeded):
			code, reason = 504, "Gateway Timeout"
		}
		he = &httpError{code: code, reason: reason, err: err}
	}
	writeJSON(w, he.code, map[string]string{"reason": he.reason, "message": he.err.Error()})
}

func (g *Gateway) apiVersion(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, 200, map[string]string{"version": g.version, "gateway": "elastic-jupyter"})
}

// specJSON is a kernelspec as /api/kernelspecs describes it.
type specJSON struct {
	Name      string            `json:"name"`
	Spec      map[string]any    `json:"spec"`
	Resources map[string]string `json:"resources"`
}

func specModel(s KernelSpec) specJSON {
	mode := s.InterruptMode
	if mode == "" {
		mode = "signal"
	}
	spec := map[string]any{
		"argv": s.Argv, "display_name": s.DisplayName, "language": s.Language,
		"interrupt_mode": mode, "env": map[string]string{}, "metadata": map[string]any{},
	}
	if s.Env != nil {
		spec["env"] = s.Env
	}
	if len(s.Metadata) > 0 {
		spec["metadata"] = json.RawMessage(s.Metadata)
	}
	if spec["display_name"] == "" {
		spec["display_name"] = s.Name
	}
	res := map[string]string{}
	var files []string
	if s.ResourceDir != "" {
		entries, _ := os.ReadDir(s.ResourceDir)
		for _, e := range entries {
			files = append(files, e.Name())
		}
	}
	for n := range s.Files {
		files = append(files, n)
	}
	for _, n := range files {
		if strings.HasPrefix(n, "logo-") {
			res[strings.TrimSuffix(n, filepath.Ext(n))] = "/kernelspecs/" + s.Name + "/" + n
		}
	}
	return specJSON{Name: s.Name, Spec: spec, Resources: res}
}

func (g *Gateway) listSpecs(w http.ResponseWriter, r *http.Request) {
	specs, def, err := g.specs.List(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	out := map[string]specJSON{}
	for _, s := range specs {
		out[s.Name] = specModel(s)
	}
	writeJSON(w, 200, map[string]any{"default": def, "kernelspecs": out})
}

func (g *Gateway) getSpec(w http.ResponseWriter, r *http.Request) {
	s, err := findSpec(r.Context(), g.specs, r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, 200, specModel(s))
}

// specResource serves a kernelspec's files (logos); 404 when there are none.
func (g *Gateway) specResource(w http.ResponseWriter, r *http.Request) {
	s, err := findSpec(r.Context(), g.specs, r.PathValue("name"))
	if err != nil {
		writeError(w, fmt.Errorf("kernelspec resource: %w", ErrNotFound))
		return
	}
	file := path.Clean("/" + r.PathValue("file"))
	if file == "/" || file == "/kernel.json" {
		writeError(w, fmt.Errorf("kernelspec resource: %w", ErrNotFound))
		return
	}
	data, ok := s.Files[strings.TrimPrefix(file, "/")]
	if !ok && s.ResourceDir != "" {
		data, err = os.ReadFile(filepath.Join(s.ResourceDir, filepath.FromSlash(file)))
		ok = err == nil
	}
	if !ok {
		writeError(w, fmt.Errorf("kernelspec resource: %w", ErrNotFound))
		return
	}
	if ct := mime.TypeByExtension(filepath.Ext(file)); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	_, _ = w.Write(data)
}

func (g *Gateway) listKernels(w http.ResponseWriter, r *http.Request) {
	models := []kernelModel{}
	for _, k := range g.list(identityOf(r.Context())) {
		models = append(models, k.model())
	}
	writeJSON(w, 200, models)
}

func (g *Gateway) getKernel(w http.ResponseWriter, r *http.Request) {
	k, err := g.get(r.PathValue("id"), identityOf(r.Context()))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, 200, k.model())
}

// maxBody bounds request bodies.
const maxBody = 1 << 20

func (g *Gateway) startKernel(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name string            `json:"name"`
		Env  map[string]string `json:"env"`
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err == nil && len(strings.TrimSpace(string(data))) > 0 {
		err = json.Unmarshal(data, &body)
	}
	if err != nil {
		writeError(w, &httpError{code: 400, reason: "Bad Request", err: fmt.Errorf("the body must be JSON {\"name\": kernelspec, \"env\": {...}}: %w", err)})
		return
	}
	k, err := g.start(r.Context(), identityOf(r.Context()), body.Name, body.Env)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Location", "/api/kernels/"+k.id)
	writeJSON(w, 201, k.model())
}

func (g *Gateway) deleteKernel(w http.ResponseWriter, r *http.Request) {
	k, err := g.get(r.PathValue("id"), identityOf(r.Context()))
	if err != nil {
		writeError(w, err)
		return
	}
	if err := g.shutdown(r.Context(), k); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(204)
}

func (g *Gateway) interruptKernel(w http.ResponseWriter, r *http.Request) {
	k, err := g.get(r.PathValue("id"), identityOf(r.Context()))
	if err != nil {
		writeError(w, err)
		return
	}
	if err := g.interrupt(r.Context(), k); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(204)
}

func (g *Gateway) restartKernel(w http.ResponseWriter, r *http.Request) {
	k, err := g.get(r.PathValue("id"), identityOf(r.Context()))
	if err != nil {
		writeError(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.settings().LaunchTimeout)
	defer cancel()
	if err := g.restart(ctx, k); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, 200, k.model())
}

// interrupt interrupts k as its kernelspec says: a signal through the provisioner, or an
// interrupt_request on the control channel. A kernel that does not run has nothing to
// interrupt: the requests its notebooks sent while it came up are cancelled instead.
func (g *Gateway) interrupt(ctx context.Context, k *kernel) error {
	v := k.view()
	if v.phase != phaseRunning {
		for _, b := range k.bridgeList() {
			b.cancelHeld("interrupted while the kernel was " + v.phase.String())
		}
		return nil
	}
	k.touch()
	if k.interruptMode == "message" {
		return sendControl(ctx, v.info, "interrupt_request")
	}
	return g.prov.Interrupt(ctx, k.id)
}

// restart restarts k in place (a suspended kernel comes back fresh, a dead one starts again).
func (g *Gateway) restart(ctx context.Context, k *kernel) error {
	k.touch()
	return k.restart(ctx)
}

// requestTimeout bounds a single control request the gateway makes itself.
const requestTimeout = 10 * time.Second
