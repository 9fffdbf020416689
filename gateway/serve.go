package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Serve runs the gateway on l until ctx ends: restores kernels, culls, serves the API, then
// shuts the server down gracefully. Kernels keep running (a restarted gateway restores them).
func (g *Gateway) Serve(ctx context.Context, l net.Listener) error {
	if err := g.Restore(ctx); err != nil {
		return err
	}
	srv := &http.Server{Handler: g.Handler(), ReadHeaderTimeout: 30 * time.Second}
	errs := make(chan error, 1)
	go func() { errs <- srv.Serve(l) }()
	g.log.Info("gateway listening", "addr", l.Addr().String())
	cullDone := make(chan struct{})
	go func() {
		defer close(cullDone)
		// The interval is read every second, so an edit of the gateway's cullInterval applies
		// at once rather than after the interval that was set before.
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		last := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				if now.Sub(last) < g.settings().CullInterval {
					continue
				}
				last = now
				g.CullOnce(ctx)
			}
		}
	}()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	g.Close()
	<-cullDone
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving: %w", err)
	}
	return nil
}
