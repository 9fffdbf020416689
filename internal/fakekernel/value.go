package fakekernel

import (
	"math"
	"math/big"
	"strconv"
	"strings"
)

// maxIntBits bounds the integers arithmetic may produce, so a cell cannot make the kernel
// allocate gigabytes (Python would try; a benchmark kernel refuses).
const maxIntBits = 1 << 16

// kind is the type of a value.
type kind int

const (
	kindInt kind = iota
	kindFloat
	kindStr
)

// value is what an expression evaluates to: a Python int (arbitrary precision), float or str.
type value struct {
	kind kind
	i    *big.Int
	f    float64
	s    string
}

func intValue(i *big.Int) value  { return value{kind: kindInt, i: i} }
func floatValue(f float64) value { return value{kind: kindFloat, f: f} }
func strValue(s string) value    { return value{kind: kindStr, s: s} }
func (v value) typeName() string { return [...]string{"int", "float", "str"}[v.kind] }

// pyError is a Python-style exception: ZeroDivisionError, KeyboardInterrupt, ...
type pyError struct {
	name, value string
	line        int // 1-based line of the statement that raised it, 0 if unknown
}

func (e *pyError) Error() string {
	if e.value == "" {
		return e.name
	}
	return e.name + ": " + e.value
}

func raise(name, msg string) *pyError { return &pyError{name: name, value: msg} }

// str is Python's str(v): what print writes.
func (v value) str() string {
	switch v.kind {
	case kindInt:
		return v.i.String()
	case kindFloat:
		return formatFloat(v.f)
	}
	return v.s
}

// repr is Python's repr(v): what an execute_result shows.
func (v value) repr() string {
	if v.kind != kindStr {
		return v.str()
	}
	quote := "'"
	if strings.Contains(v.s, "'") && !strings.Contains(v.s, `"`) {
		quote = `"`
	}
	var b strings.Builder
	b.WriteString(quote)
	for _, r := range v.s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case string(r) == quote:
			b.WriteString(`\` + quote)
		case r < 0x20 || r == 0x7f:
			b.WriteString(`\x` + strconv.FormatInt(int64(r)+0x100, 16)[1:])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteString(quote)
	return b.String()
}

// formatFloat writes f as Python's repr does: the shortest digits that round-trip, fixed
// notation for exponents from -4 to 15 (always with a decimal point), scientific otherwise.
func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	sci := strconv.FormatFloat(f, 'e', -1, 64) // such as 1.5e-05 or 1e+16
	exp, _ := strconv.Atoi(sci[strings.IndexByte(sci, 'e')+1:])
	if exp < -4 || exp >= 16 {
		return sci
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}

// toFloat converts a number to float64, as Python does when an int meets a float.
func (v value) toFloat() (float64, *pyError) {
	if v.kind == kindFloat {
		return v.f, nil
	}
	f, _ := new(big.Float).SetInt(v.i).Float64()
	if math.IsInf(f, 0) {
		return 0, raise("OverflowError", "int too large to convert to float")
	}
	return f, nil
}

// seconds converts a number to a duration argument for sleep, in seconds.
func (v value) seconds() (float64, *pyError) {
	if v.kind == kindStr {
		return 0, raise("TypeError", "'str' object cannot be interpreted as an integer")
	}
	s, err := v.toFloat()
	if err != nil {
		return 0, err
	}
	if math.IsNaN(s) {
		return 0, raise("ValueError", "Invalid value NaN (not a number)")
	}
	if s < 0 {
		return 0, raise("ValueError", "sleep length must be non-negative")
	}
	if s > math.MaxInt64/1e9 {
		return 0, raise("OverflowError", "sleep length is too large")
	}
	return s, nil
}

// negate is unary minus.
func negate(v value) (value, *pyError) {
	switch v.kind {
	case kindInt:
		return intValue(new(big.Int).Neg(v.i)), nil
	case kindFloat:
		return floatValue(-v.f), nil
	}
	return value{}, raise("TypeError", "bad operand type for unary -: 'str'")
}

// binaryOp applies one of + - * / // % ** with Python's semantics for int and float (floor
// division and modulo round towards negative infinity; / always gives a float).
func binaryOp(op string, x, y value) (value, *pyError) {
	if x.kind == kindStr || y.kind == kindStr {
		if op == "+" && x.kind == kindStr && y.kind == kindStr {
			return strValue(x.s + y.s), nil
		}
		return value{}, raise("TypeError", "unsupported operand type(s) for "+op+": '"+x.typeName()+"' and '"+y.typeName()+"'")
	}
	if x.kind == kindInt && y.kind == kindInt && op != "/" {
		return intOp(op, x.i, y.i)
	}
	a, err := x.toFloat()
	if err != nil {
		return value{}, err
	}
	b, err := y.toFloat()
	if err != nil {
		return value{}, err
	}
	return floatOp(op, a, b, x.kind == kindInt && y.kind == kindInt)
}

func intOp(op string, a, b *big.Int) (value, *pyError) {
	r := new(big.Int)
	switch op {
	case "+":
		r.Add(a, b)
	case "-":
		r.Sub(a, b)
	case "*":
		r.Mul(a, b)
	case "//", "%":
		if b.Sign() == 0 {
			return value{}, raise("ZeroDivisionError", "integer division or modulo by zero")
		}
		q, m := new(big.Int).QuoRem(a, b, new(big.Int))
		if m.Sign() != 0 && m.Sign() != b.Sign() {
			q.Sub(q, big.NewInt(1))
			m.Add(m, b)
		}
		if op == "//" {
			return intValue(q), nil
		}
		return intValue(m), nil
	case "**":
		if b.Sign() < 0 {
			fa, err := intValue(a).toFloat()
			if err != nil {
				return value{}, err
			}
			fb, err := intValue(b).toFloat()
			if err != nil {
				return value{}, err
			}
			return floatOp(op, fa, fb, true)
		}
		if a.CmpAbs(big.NewInt(1)) > 0 && (!b.IsInt64() || b.Int64() > maxIntBits || int64(a.BitLen()-1)*b.Int64() > maxIntBits) {
			return value{}, errTooBig()
		}
		r.Exp(a, b, nil)
	}
	if r.BitLen() > maxIntBits {
		return value{}, errTooBig()
	}
	return intValue(r), nil
}

func errTooBig() *pyError {
	return raise("OverflowError", "the fake kernel refuses integers over 65536 bits")
}

func floatOp(op string, a, b float64, fromInts bool) (value, *pyError) {
	var r float64
	switch op {
	case "+":
		r = a + b
	case "-":
		r = a - b
	case "*":
		r = a * b
	case "/", "//", "%":
		if b == 0 {
			if op == "/" && fromInts {
				return value{}, raise("ZeroDivisionError", "division by zero")
			}
			return value{}, raise("ZeroDivisionError", "float division by zero")
		}
		switch op {
		case "/":
			r = a / b
		case "//":
			r = math.Floor(a / b)
		default:
			r = math.Mod(a, b)
			if r != 0 && (r < 0) != (b < 0) {
				r += b
			}
		}
	case "**":
		if a == 0 && b < 0 {
			return value{}, raise("ZeroDivisionError", "0.0 cannot be raised to a negative power")
		}
		r = math.Pow(a, b)
		if math.IsNaN(r) && !math.IsNaN(a) && !math.IsNaN(b) {
			return value{}, raise("ValueError", "complex results are not supported by the fake kernel")
		}
		if math.IsInf(r, 0) && !math.IsInf(a, 0) && !math.IsInf(b, 0) {
			// Python's ** raises where + and * give inf.
			return value{}, raise("OverflowError", "(34, 'Numerical result out of range')")
		}
	}
	return floatValue(r), nil
}
