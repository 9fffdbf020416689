package fakekernel

import (
	"fmt"
	"strings"
	"time"
)

// Bounds on one expression, so that neither parsing nor evaluating (both recursive) can
// exhaust the stack: nested parentheses, and operators.
const (
	maxDepth     = 100
	maxOperators = 10000
)

type stmtKind int

const (
	stmtNop   stmtKind = iota // import ..., from ... import ..., pass
	stmtPrint                 // print(a, b, ...)
	stmtSleep                 // sleep N, sleep(N), time.sleep(N)
	stmtRaise                 // raise Name, raise Name('message')
	stmtExpr                  // an expression; the last one of a cell is its result
)

type stmt struct {
	kind stmtKind
	line int
	args []expr // print's arguments; sleep's and stmtExpr's one expression
	name string // raise's exception name
	msg  string // raise's message
}

// program is one parsed cell.
type program struct{ stmts []stmt }

// runtime is what running a program does to the world: the kernel's execution.
type runtime interface {
	// write is print's output on stdout.
	write(text string)
	// sleep waits d, or returns KeyboardInterrupt when interrupted.
	sleep(d time.Duration) *pyError
	// check returns KeyboardInterrupt if an interrupt is pending: Python notices one between
	// statements too.
	check() *pyError
}

// parse parses a cell of the fake kernel's language, or returns an error wrapping errNotFake.
func parse(code string) (*program, error) {
	toks, err := lex(code)
	if err != nil {
		return nil, err
	}
	p := &program{}
	start := 0
	for i, t := range toks {
		if t.kind != tokEnd && t.kind != tokEOF {
			continue
		}
		if i > start {
			s, err := parseStmt(toks[start:i])
			if err != nil {
				return nil, err
			}
			p.stmts = append(p.stmts, s)
		}
		start = i + 1
	}
	return p, nil
}

// parseStmt parses the tokens of one statement (without the end token).
func parseStmt(toks []token) (stmt, error) {
	toks = append(toks[:len(toks):len(toks)], token{kind: tokEOF, line: toks[len(toks)-1].line})
	p := &parser{toks: toks}
	s := stmt{line: toks[0].line}
	switch first := toks[0]; {
	case first.kind == tokName && (first.text == "import" || first.text == "from"):
		// Imports are accepted as long as they are names: "import time", "from x import y".
		for _, t := range toks[1 : len(toks)-1] {
			if t.kind != tokName && !(t.kind == tokOp && (t.text == "." || t.text == ",")) {
				return s, fmt.Errorf("%w: import on line %d", errNotFake, s.line)
			}
		}
		return s, nil
	case p.accept(tokName, "pass"):
		s.kind = stmtNop
	case p.accept(tokName, "print"):
		s.kind = stmtPrint
		if err := p.expect(tokOp, "("); err != nil {
			return s, err
		}
		for !p.accept(tokOp, ")") {
			if len(s.args) > 0 {
				if err := p.expect(tokOp, ","); err != nil {
					return s, err
				}
				if p.accept(tokOp, ")") { // a trailing comma
					break
				}
			}
			e, err := p.expr()
			if err != nil {
				return s, err
			}
			s.args = append(s.args, e)
		}
	case p.accept(tokName, "sleep"):
		// The fake syntax "sleep 5", and "sleep(5)" which is the same expression.
		s.kind = stmtSleep
		e, err := p.expr()
		if err != nil {
			return s, err
		}
		s.args = []expr{e}
	case first.kind == tokName && first.text == "time" && len(toks) > 2 && toks[1].text == "." && toks[2].text == "sleep":
		s.kind = stmtSleep
		p.pos = 3
		if err := p.expect(tokOp, "("); err != nil {
			return s, err
		}
		e, err := p.expr()
		if err != nil {
			return s, err
		}
		if err := p.expect(tokOp, ")"); err != nil {
			return s, err
		}
		s.args = []expr{e}
	case p.accept(tokName, "raise"):
		s.kind = stmtRaise
		if p.peek().kind != tokName {
			return s, fmt.Errorf("%w: raise on line %d needs an exception name", errNotFake, s.line)
		}
		s.name = p.next().text
		if p.accept(tokOp, "(") {
			if t := p.peek(); t.kind == tokStr {
				s.msg = p.next().val.s
			}
			if err := p.expect(tokOp, ")"); err != nil {
				return s, err
			}
		}
	default:
		s.kind = stmtExpr
		e, err := p.expr()
		if err != nil {
			return s, err
		}
		s.args = []expr{e}
	}
	if t := p.peek(); t.kind != tokEOF {
		return s, fmt.Errorf("%w: unexpected %q on line %d", errNotFake, t.text, t.line)
	}
	return s, nil
}

// run executes the program. It returns the value of a final expression statement (nil if the
// cell does not end with one), or the exception that stopped it.
func (p *program) run(rt runtime) (*value, *pyError) {
	var last *value
	for _, s := range p.stmts {
		last = nil
		if err := rt.check(); err != nil {
			return nil, at(err, s.line)
		}
		switch s.kind {
		case stmtPrint:
			parts := make([]string, len(s.args))
			for i, a := range s.args {
				v, err := a.eval()
				if err != nil {
					return nil, at(err, s.line)
				}
				parts[i] = v.str()
			}
			rt.write(strings.Join(parts, " ") + "\n")
		case stmtSleep:
			v, err := s.args[0].eval()
			if err == nil {
				var secs float64
				if secs, err = v.seconds(); err == nil {
					err = rt.sleep(time.Duration(secs * float64(time.Second)))
				}
			}
			if err != nil {
				return nil, at(err, s.line)
			}
		case stmtRaise:
			return nil, at(raise(s.name, s.msg), s.line)
		case stmtExpr:
			v, err := s.args[0].eval()
			if err != nil {
				return nil, at(err, s.line)
			}
			last = &v
		}
	}
	return last, nil
}

func at(err *pyError, line int) *pyError {
	if err.line == 0 {
		err.line = line
	}
	return err
}

// expr is a parsed expression.
type expr interface{ eval() (value, *pyError) }

type literal struct{ v value }

func (l literal) eval() (value, *pyError) { return l.v, nil }

type unary struct {
	op string
	x  expr
}

func (u unary) eval() (value, *pyError) {
	v, err := u.x.eval()
	if err != nil {
		return v, err
	}
	if u.op == "-" {
		return negate(v)
	}
	if v.kind == kindStr {
		return value{}, raise("TypeError", "bad operand type for unary +: 'str'")
	}
	return v, nil
}

type binary struct {
	op   string
	x, y expr
}

func (b binary) eval() (value, *pyError) {
	x, err := b.x.eval()
	if err != nil {
		return x, err
	}
	y, err := b.y.eval()
	if err != nil {
		return y, err
	}
	return binaryOp(b.op, x, y)
}

// parser is a recursive-descent parser over one statement's tokens, with Python's precedence:
// + - below * / // % below unary + - below ** (right-associative; -2**2 is -4).
type parser struct {
	toks      []token
	pos       int
	depth     int
	operators int
}

func (p *parser) peek() token { return p.toks[p.pos] }

func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tokEOF {
		p.pos++
	}
	return t
}

func (p *parser) accept(kind tokKind, text string) bool {
	if t := p.peek(); t.kind == kind && t.text == text {
		p.pos++
		return true
	}
	return false
}

func (p *parser) expect(kind tokKind, text string) error {
	if !p.accept(kind, text) {
		t := p.peek()
		return fmt.Errorf("%w: expected %q, found %q on line %d", errNotFake, text, t.text, t.line)
	}
	return nil
}

func (p *parser) expr() (expr, error) {
	return p.binaryLevel([]string{"+", "-"}, func() (expr, error) {
		return p.binaryLevel([]string{"*", "/", "//", "%"}, p.unary)
	})
}

func (p *parser) binaryLevel(ops []string, operand func() (expr, error)) (expr, error) {
	x, err := operand()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		if t.kind != tokOp || !contains(ops, t.text) {
			return x, nil
		}
		p.next()
		if err := p.operator(); err != nil {
			return nil, err
		}
		y, err := operand()
		if err != nil {
			return nil, err
		}
		x = binary{op: t.text, x: x, y: y}
	}
}

func (p *parser) unary() (expr, error) {
	if t := p.peek(); t.kind == tokOp && (t.text == "-" || t.text == "+") {
		if err := p.operator(); err != nil {
			return nil, err
		}
		p.next()
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return unary{op: t.text, x: x}, nil
	}
	return p.power()
}

func (p *parser) power() (expr, error) {
	x, err := p.atom()
	if err != nil {
		return nil, err
	}
	if p.accept(tokOp, "**") {
		if err := p.operator(); err != nil {
			return nil, err
		}
		y, err := p.unary() // 2**-1 is allowed
		if err != nil {
			return nil, err
		}
		return binary{op: "**", x: x, y: y}, nil
	}
	return x, nil
}

func (p *parser) atom() (expr, error) {
	t := p.next()
	switch {
	case t.kind == tokNum || t.kind == tokStr:
		return literal{t.val}, nil
	case t.kind == tokOp && t.text == "(":
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer p.leave()
		x, err := p.expr()
		if err != nil {
			return nil, err
		}
		if err := p.expect(tokOp, ")"); err != nil {
			return nil, err
		}
		return x, nil
	}
	return nil, fmt.Errorf("%w: unexpected %q on line %d", errNotFake, t.text, t.line)
}

func (p *parser) enter() error {
	if p.depth++; p.depth > maxDepth {
		return fmt.Errorf("%w: expression nested deeper than %d", errNotFake, maxDepth)
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

func (p *parser) operator() error {
	if p.operators++; p.operators > maxOperators {
		return fmt.Errorf("%w: more than %d operators in one expression", errNotFake, maxOperators)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
