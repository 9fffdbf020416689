package fakekernel

import (
	"fmt"
	"strings"
	"time"
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
