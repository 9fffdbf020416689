package fakekernel

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// errNotFake means code is not in the fake kernel's language (it is answered with an echo).
var errNotFake = errors.New("not in the fake kernel's language")

type tokKind int

const (
	tokEOF tokKind = iota
	tokEnd         // end of a statement: a newline or ';'
	tokNum
	tokStr
	tokName
	tokOp
)

type token struct {
	kind tokKind
	text string // the name or operator
	val  value  // the literal of tokNum and tokStr
	line int
}

// operators, longest first.
var operators = []string{"**", "//", "+", "-", "*", "/", "%", "(", ")", ",", "."}

// lex splits a cell into tokens. Comments are dropped; anything the language does not know
// is errNotFake.
func lex(code string) ([]token, error) {
	var toks []token
	line := 1
	for i := 0; i < len(code); {
		c := code[i]
		switch {
		case c == '\n' || c == ';':
			toks = append(toks, token{kind: tokEnd, line: line})
			if c == '\n' {
				line++
			}
			i++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f':
			i++
		case c == '#':
			for i < len(code) && code[i] != '\n' {
				i++
			}
		case c == '\\' && i+1 < len(code) && code[i+1] == '\n':
			i += 2 // a line continuation
			line++
		case isDigit(c) || (c == '.' && i+1 < len(code) && isDigit(code[i+1])):
			n, v, err := lexNumber(code[i:])
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: tokNum, val: v, line: line})
			i += n
		case c == '\'' || c == '"':
			n, s, err := lexString(code[i:])
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: tokStr, val: strValue(s), line: line})
			i += n
		case isNameStart(c):
			j := i + 1
			for j < len(code) && (isNameStart(code[j]) || isDigit(code[j])) {
				j++
			}
			toks = append(toks, token{kind: tokName, text: code[i:j], line: line})
			i = j
		default:
			op := ""
			for _, o := range operators {
				if strings.HasPrefix(code[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				return nil, fmt.Errorf("%w: %q on line %d", errNotFake, c, line)
			}
			toks = append(toks, token{kind: tokOp, text: op, line: line})
			i += len(op)
		}
	}
	return append(toks, token{kind: tokEOF, line: line}), nil
}

func isDigit(c byte) bool     { return c >= '0' && c <= '9' }
func isNameStart(c byte) bool { return c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z') }

// lexNumber reads an int (digits, single underscores between them) or a float (a decimal
// point or an exponent) at the start of s and returns its length.
func lexNumber(s string) (int, value, error) {
	i, float := 0, false
	digits := func() {
		for i < len(s) && (isDigit(s[i]) || (s[i] == '_' && i > 0 && isDigit(s[i-1]) && i+1 < len(s) && isDigit(s[i+1]))) {
			i++
		}
	}
	digits()
	if i < len(s) && s[i] == '.' {
		float = true
		i++
		digits()
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < len(s) && isDigit(s[j]) {
			float, i = true, j
			digits()
		}
	}
	if i < len(s) && (isNameStart(s[i]) || s[i] == '.') {
		return 0, value{}, fmt.Errorf("%w: number %q", errNotFake, s[:i+1]) // 0x1f, 1j, 1..2
	}
	text := strings.ReplaceAll(s[:i], "_", "")
	if float {
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return 0, value{}, fmt.Errorf("%w: number %q: %v", errNotFake, text, err)
		}
		return i, floatValue(f), nil
	}
	n, ok := new(big.Int).SetString(text, 10)
	if !ok {
		return 0, value{}, fmt.Errorf("%w: number %q", errNotFake, text)
	}
	return i, intValue(n), nil
}

// lexString reads a one-line string literal in single or double quotes at the start of s,
// with the escapes \\ \' \" \n \t \r (other backslashes stay, as in Python).
func lexString(s string) (int, string, error) {
	q := s[0]
	if strings.HasPrefix(s, strings.Repeat(string(q), 3)) {
		return 0, "", fmt.Errorf("%w: triple-quoted string", errNotFake)
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == q:
			return i + 1, b.String(), nil
		case c == '\n':
			return 0, "", fmt.Errorf("%w: unterminated string", errNotFake)
		case c == '\\' && i+1 < len(s):
			i++
			switch e := s[i]; e {
			case '\\', '\'', '"':
				b.WriteByte(e)
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '\n':
			default:
				b.WriteByte('\\')
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return 0, "", fmt.Errorf("%w: unterminated string", errNotFake)
}
