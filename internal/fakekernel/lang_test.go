package fakekernel

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder is a runtime that records output and sleeps instead of doing them.
type recorder struct {
	out         strings.Builder
	slept       []time.Duration
	interruptAt int // interrupt the nth sleep (1-based); 0: never
	pending     bool
}

func (r *recorder) write(s string) { r.out.WriteString(s) }

func (r *recorder) sleep(d time.Duration) *pyError {
	r.slept = append(r.slept, d)
	if len(r.slept) == r.interruptAt {
		return raise("KeyboardInterrupt", "")
	}
	return nil
}

func (r *recorder) check() *pyError {
	if r.pending {
		return raise("KeyboardInterrupt", "")
	}
	return nil
}

func run(t *testing.T, code string, rt *recorder) (*value, *pyError) {
	t.Helper()
	p, err := parse(code)
	require.NoError(t, err, code)
	return p.run(rt)
}

func TestLanguageResults(t *testing.T) {
	for code, want := range map[string]string{
		"1+1":            "2",
		"6*7":            "42",
		"2**100":         "1267650600228229401496703205376",
		"-2**2":          "-4",
		"2**3**2":        "512",
		"2**-1":          "0.5",
		"(1+2)*3":        "9",
		"7//2":           "3",
		"-7//2":          "-4",
		"7//-2":          "-4",
		"-7%3":           "2",
		"7%-3":           "-2",
		"7/2":            "3.5",
		"4/2":            "2.0",
		"1/3":            "0.3333333333333333",
		"0.1+0.2":        "0.30000000000000004",
		"1e16":           "1e+16",
		"1e15":           "1000000000000000.0",
		"0.0001":         "0.0001",
		"0.00001":        "1e-05",
		"-7.5//2":        "-4.0",
		"-7.5%2":         "0.5",
		"1_000*2":        "2000",
		"+3":             "3",
		"'a'+'b'":        "'ab'",
		`"it's"`:         `"it's"`,
		`'tab\there'`:    `'tab\there'`,
		"1\n2\n3":        "3",
		"1; 2 # comment": "2",
		"1e308*10":       "inf",
	} {
		v, perr := run(t, code, &recorder{})
		require.Nil(t, perr, code)
		require.NotNil(t, v, code)
		assert.Equal(t, want, v.repr(), code)
	}
}

func TestLanguagePrintAndSleep(t *testing.T) {
	rt := &recorder{}
	v, perr := run(t, "import time\nprint(6*7)\nprint('a', 1/4, 2)\ntime.sleep(1.5)\nsleep 2\nsleep(0)\nprint()\npass", rt)
	require.Nil(t, perr)
	assert.Nil(t, v, "a cell ending in a statement has no result")
	assert.Equal(t, "42\na 0.25 2\n\n", rt.out.String())
	assert.Equal(t, []time.Duration{1500 * time.Millisecond, 2 * time.Second, 0}, rt.slept)
}

func TestLanguageErrors(t *testing.T) {
	for code, want := range map[string]string{
		"1/0":                     "ZeroDivisionError: division by zero",
		"1//0":                    "ZeroDivisionError: integer division or modulo by zero",
		"1.0/0":                   "ZeroDivisionError: float division by zero",
		"print(1)\nprint(2%0)":    "ZeroDivisionError: integer division or modulo by zero",
		"'a'*2":                   "TypeError: unsupported operand type(s) for *: 'str' and 'int'",
		"-'a'":                    "TypeError: bad operand type for unary -: 'str'",
		"sleep -1":                "ValueError: sleep length must be non-negative",
		"sleep 'x'":               "TypeError: 'str' object cannot be interpreted as an integer",
		"raise ValueError('bad')": "ValueError: bad",
		"raise KeyboardInterrupt": "KeyboardInterrupt",
		"2**100000":               "OverflowError: the fake kernel refuses integers over 65536 bits",
		"10.0**400":               "OverflowError: (34, 'Numerical result out of range')",
		"2**(2**70)":              "OverflowError: the fake kernel refuses integers over 65536 bits",
	} {
		_, perr := run(t, code, &recorder{})
		require.NotNil(t, perr, code)
		assert.Equal(t, want, perr.Error(), code)
	}
	_, perr := run(t, "print(1)\n\nprint(1/0)", &recorder{})
	require.NotNil(t, perr)
	assert.Equal(t, 3, perr.line, "the line of the failing statement")
}

func TestLanguageInterrupts(t *testing.T) {
	rt := &recorder{interruptAt: 1}
	_, perr := run(t, "print('before')\nsleep 60\nprint('after')", rt)
	require.NotNil(t, perr)
	assert.Equal(t, "KeyboardInterrupt", perr.name)
	assert.Equal(t, "before\n", rt.out.String(), "nothing runs after the interrupted sleep")

	rt = &recorder{pending: true}
	_, perr = run(t, "print('never')", rt)
	require.NotNil(t, perr)
	assert.Equal(t, "KeyboardInterrupt", perr.name, "a pending interrupt stops the next statement")
	assert.Empty(t, rt.out.String())
}

func TestLanguageRefusesOtherCode(t *testing.T) {
	for _, code := range []string{
		"x = 1", "import numpy as np; np.zeros(3)", "print(x)", "def f():\n  pass", "f'{1}'", "0x1f", "1j",
		"print(1", "print(1,,2)", "sleep", "'''doc'''", "'open", "[1, 2]", "a.b", "raise",
		"time.sleep 5", "pass 1", "1 2", strings.Repeat("(", 200) + "1" + strings.Repeat(")", 200),
		strings.Repeat("1+", maxOperators+1) + "1", strings.Repeat("-", maxOperators+1) + "1",
	} {
		_, err := parse(code)
		assert.True(t, errors.Is(err, errNotFake), "%q: %v", code, err)
	}
	p, err := parse("  \n# only a comment\n;")
	require.NoError(t, err)
	assert.Empty(t, p.stmts)
}

func TestLanguageBoundsIntegers(t *testing.T) {
	// Each factor is allowed; their product is not.
	_, perr := run(t, "2**60000 * 2**60000", &recorder{})
	require.NotNil(t, perr)
	assert.Equal(t, "OverflowError", perr.name)
	v, perr := run(t, "2**65535 // 2**65534", &recorder{})
	require.Nil(t, perr)
	assert.Equal(t, "2", v.repr())
}

// FuzzLanguage runs its seeds in every go test; go test -fuzz=FuzzLanguage explores further.
// Any code may be refused, but parsing and running never panic, and output is bounded.
func FuzzLanguage(f *testing.F) {
	for _, seed := range []string{
		"print(6*7)", "import time; time.sleep(0.5)", "sleep 1", "-2**-2", "1/0", "'a'+\"b\"",
		"raise ValueError('x')", "(1+2)*3//4%5", "1e308**2", "print('\\n', 1.5e-7, 2**64)", "x = 1",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, code string) {
		p, err := parse(code)
		if err != nil {
			if !errors.Is(err, errNotFake) {
				t.Fatalf("parse(%q): %v is not errNotFake", code, err)
			}
			return
		}
		rt := &recorder{}
		v, perr := p.run(rt)
		if v != nil {
			_ = v.repr()
		}
		if perr != nil && perr.name == "" {
			t.Fatalf("%q raised an exception without a name", code)
		}
	})
}
