package loglevel

import (
	"flag"
	"io"
	"log/slog"
	"strings"
	"testing"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		word string
		want slog.Level
		bad  bool
	}{
		{word: "DEBUG", want: slog.LevelDebug},
		{word: "debug", want: slog.LevelDebug},
		{word: "INFO", want: slog.LevelInfo},
		{word: "Info", want: slog.LevelInfo},
		{word: "WARNING", want: slog.LevelWarn},
		{word: "warning", want: slog.LevelWarn},
		{word: "WARN", want: slog.LevelWarn},
		{word: "warn", want: slog.LevelWarn},
		{word: "ERROR", want: slog.LevelError},
		{word: " error ", want: slog.LevelError},
		{word: "", bad: true},
		{word: "LOUD", bad: true},
		{word: "TRACE", bad: true},
		{word: "INFO+2", bad: true},
		{word: "0", bad: true},
	} {
		t.Run(tc.word, func(t *testing.T) {
			got, err := Parse(tc.word)
			if tc.bad {
				if err == nil {
					t.Fatalf("Parse(%q) = %v, want an error", tc.word, got)
				}
				if !strings.Contains(err.Error(), Words) || !strings.Contains(err.Error(), `"`+tc.word+`"`) {
					t.Errorf("the error %q does not name the word and list %s", err, Words)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("Parse(%q) = %v, %v; want %v", tc.word, got, err, tc.want)
			}
		})
	}
}

// Every word of the JupyterGateway's spec.logLevel enum is a word of --log-level, which the
// controller passes it to.
func TestParseTakesTheGatewayCRDWords(t *testing.T) {
	for _, w := range []ejv1.LogLevel{ejv1.LogLevelDebug, ejv1.LogLevelInfo, ejv1.LogLevelWarning, ejv1.LogLevelError} {
		l, err := Parse(string(w))
		if err != nil {
			t.Errorf("spec.logLevel %s: %v", w, err)
		}
		if Word(l) != string(w) {
			t.Errorf("spec.logLevel %s reads as %s", w, Word(l))
		}
	}
}

// The word of each level parses back to it: a level written into a pod's arguments (the
// gateway's, from spec.logLevel) reads back the same.
func TestWordParsesBack(t *testing.T) {
	for l, want := range map[slog.Level]string{slog.LevelDebug: "DEBUG", slog.LevelInfo: "INFO", slog.LevelWarn: "WARNING", slog.LevelError: "ERROR"} {
		if got := Word(l); got != want {
			t.Errorf("Word(%v) = %q, want %q", l, got, want)
		}
		if back, err := Parse(Word(l)); err != nil || back != l {
			t.Errorf("Parse(Word(%v)) = %v, %v", l, back, err)
		}
	}
}

func TestVar(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		want    slog.Level
		wantErr string
	}{
		{args: nil, want: slog.LevelInfo},
		{args: []string{"--log-level", "warn"}, want: slog.LevelWarn},
		{args: []string{"-log-level=DEBUG"}, want: slog.LevelDebug},
		{args: []string{"--log-level", "loud"}, wantErr: `invalid value "loud" for flag -log-level: use DEBUG, INFO, WARNING (or WARN) or ERROR`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			f := Var(fs)
			err := fs.Parse(tc.args)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || f.Level != tc.want {
				t.Fatalf("level %v, %v; want %v", f.Level, err, tc.want)
			}
			if got := fs.Lookup(FlagName).Value.(flag.Getter).Get(); got != tc.want {
				t.Errorf("Get() = %v", got)
			}
		})
	}
}

// The help text lists the words and the default once.
func TestVarHelp(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var out strings.Builder
	fs.SetOutput(&out)
	Var(fs)
	fs.PrintDefaults()
	if got, want := out.String(), "  -log-level LEVEL\n    \thow much to log, a LEVEL: "+Words+", in any case (default INFO)\n"; got != want {
		t.Errorf("help = %q, want %q", got, want)
	}
}
