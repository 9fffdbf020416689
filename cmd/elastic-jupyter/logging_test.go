package main

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"go.uber.org/zap/zapcore"
)

// The controller's and the webhook's --log-level take the words of every other binary and set
// their zap logger's level; controller-runtime's --zap-* flags still work on their own.
func TestZapFlags(t *testing.T) {
	warn, errLevel := zapcore.WarnLevel, zapcore.ErrorLevel
	for _, tc := range []struct {
		args        []string
		info, debug bool           // whether the logger logs logr's V(0) and V(1)
		zap         *zapcore.Level // the zap level, where logr cannot tell (WARNING from ERROR)
		wantErr     string
	}{
		{args: nil, info: true},
		{args: []string{"--log-level", "DEBUG"}, info: true, debug: true},
		{args: []string{"--log-level=info"}, info: true},
		{args: []string{"--log-level", "WARNING"}, zap: &warn},
		{args: []string{"--log-level", "warn"}, zap: &warn},
		{args: []string{"--log-level", "Error"}, zap: &errLevel},
		{args: []string{"--zap-log-level=debug"}, info: true, debug: true},
		{args: []string{"--zap-log-level=error"}},
		{args: []string{"--zap-devel"}, info: true, debug: true},
		{args: []string{"--zap-devel", "--log-level", "INFO"}, info: true},
		{args: []string{"--log-level", "loud"}, wantErr: `invalid value "loud" for flag -log-level: use DEBUG, INFO, WARNING (or WARN) or ERROR`},
		{args: []string{"--log-level", "DEBUG", "--zap-log-level", "info"}, wantErr: "--log-level and --zap-log-level both given"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			fs := flag.NewFlagSet("controller", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			z := bindZapFlags(fs)
			err := fs.Parse(tc.args)
			if err == nil {
				var l logr.Logger
				l, err = z.logger()
				if err == nil {
					if got := l.Enabled(); got != tc.info {
						t.Errorf("info logged: %v, want %v", got, tc.info)
					}
					if got := l.V(1).Enabled(); got != tc.debug {
						t.Errorf("debug logged: %v, want %v", got, tc.debug)
					}
					if tc.zap != nil && z.opts.Level != *tc.zap {
						t.Errorf("zap level %v, want %v", z.opts.Level, *tc.zap)
					}
				}
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
