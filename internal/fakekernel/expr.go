package fakekernel

import "fmt"

// Bounds on one expression, so that neither parsing nor evaluating (both recursive) can
// exhaust the stack: nested parentheses, and operators.
const (
	maxDepth     = 100
	maxOperators = 10000
)

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
