package main

import (
	"errors"
	"flag"
	"log/slog"

	"github.com/go-logr/logr"
	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/elastic-jupyter/elastic-jupyter/internal/loglevel"
)

// zapFlags are the logging flags of the controller and the webhook: --log-level, in the words
// every other binary takes (package loglevel), beside controller-runtime's --zap-* flags, which
// keep working for the deployments that pass them.
type zapFlags struct {
	fs    *flag.FlagSet
	level *loglevel.Flag
	opts  zap.Options
}

// bindZapFlags defines --log-level and the --zap-* flags on fs.
func bindZapFlags(fs *flag.FlagSet) *zapFlags {
	z := &zapFlags{fs: fs, level: loglevel.Var(fs)}
	z.opts.BindFlags(fs)
	return z
}

// parse parses the flag set's args and makes the logger they ask for controller-runtime's.
func (z *zapFlags) parse(args []string) error {
	if err := z.fs.Parse(args); err != nil {
		return err
	}
	log, err := z.logger()
	if err != nil {
		return err
	}
	ctrl.SetLogger(log)
	return nil
}

// logger returns the logger the flags ask for, once fs is parsed. --log-level and
// --zap-log-level set the same thing: giving both is refused.
func (z *zapFlags) logger() (logr.Logger, error) {
	given := map[string]bool{}
	z.fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if given[loglevel.FlagName] {
		if given["zap-log-level"] {
			return logr.Logger{}, errors.New("--log-level and --zap-log-level both given: give --log-level alone (" + loglevel.Words + ")")
		}
		z.opts.Level = zapLevel(z.level.Level)
	}
	return zap.New(zap.UseFlagOptions(&z.opts)), nil
}

// zapLevel maps a slog level onto zap's. logr has no warnings: at WARNING, as at ERROR, only
// errors are logged.
func zapLevel(l slog.Level) zapcore.Level {
	switch {
	case l < slog.LevelInfo:
		return zapcore.DebugLevel
	case l < slog.LevelWarn:
		return zapcore.InfoLevel
	case l < slog.LevelError:
		return zapcore.WarnLevel
	default:
		return zapcore.ErrorLevel
	}
}
