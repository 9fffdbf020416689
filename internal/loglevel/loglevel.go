// Package loglevel is the one vocabulary of log levels across elastic-jupyter: every binary's
// --log-level (gateway, controller, webhook, devnode, kernel-launcher, fake-kernel) and the
// JupyterGateway's spec.logLevel take the same words, DEBUG, INFO, WARNING and ERROR, in any
// case, with WARN accepted for WARNING. Levels are log/slog's; the controller and the webhook
// map them onto their zap logger.
package loglevel

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
)

// FlagName is the name of the flag every binary takes its level from.
const FlagName = "log-level"

// Words are the accepted words, for help texts and errors.
const Words = "DEBUG, INFO, WARNING (or WARN) or ERROR"

// Usage is the help text of --log-level.
const Usage = "how much to log, a `LEVEL`: " + Words + ", in any case (default INFO)"

// errWords is what a wrong word is told.
var errWords = errors.New("use " + Words)

// Parse returns the level word names, in any case: DEBUG, INFO, WARNING (or WARN), ERROR.
func Parse(word string) (slog.Level, error) {
	switch strings.ToUpper(strings.TrimSpace(word)) {
	case "DEBUG":
		return slog.LevelDebug, nil
	case "INFO":
		return slog.LevelInfo, nil
	case "WARNING", "WARN":
		return slog.LevelWarn, nil
	case "ERROR":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log level %q: %w", word, errWords)
}

// Word returns the word of a level: DEBUG, INFO, WARNING or ERROR; a level between two is
// written as slog writes it (INFO+2).
func Word(l slog.Level) string {
	if l == slog.LevelWarn {
		return "WARNING"
	}
	return l.String()
}

// Flag is a --log-level flag (a flag.Value) holding a level, INFO until set.
type Flag struct {
	// Level is the level given.
	Level slog.Level
}

var _ flag.Getter = (*Flag)(nil)

// Set parses word with Parse. Its error lists the words; the flag package names the flag:
// invalid value "loud" for flag -log-level: use DEBUG, INFO, WARNING (or WARN) or ERROR.
func (f *Flag) Set(word string) error {
	l, err := Parse(word)
	if err != nil {
		return errWords
	}
	f.Level = l
	return nil
}

// String returns the word of the level.
func (f *Flag) String() string {
	if f == nil {
		return Word(slog.LevelInfo)
	}
	return Word(f.Level)
}

// Get returns the slog.Level.
func (f *Flag) Get() any { return f.Level }

// Var defines --log-level on fs, INFO by default, and returns it: after fs.Parse its Level is
// the level given.
func Var(fs *flag.FlagSet) *Flag {
	f := &Flag{Level: slog.LevelInfo}
	fs.Var(f, FlagName, Usage)
	return f
}
