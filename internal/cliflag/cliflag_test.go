package cliflag

import (
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestList(t *testing.T) {
	for _, tc := range []struct {
		name  string
		comma bool
		args  []string
		want  []string
	}{
		{name: "unset", args: nil, want: nil},
		{name: "repeated", args: []string{"--v", "a", "--v", "b"}, want: []string{"a", "b"}},
		{name: "whole values keep commas and spaces", args: []string{"--v", "a,b", "--v", " c "}, want: []string{"a,b", " c "}},
		{name: "whole empty value", args: []string{"--v="}, want: []string{""}},
		{name: "comma list", comma: true, args: []string{"--v", "a,b"}, want: []string{"a", "b"}},
		{name: "comma list repeated", comma: true, args: []string{"--v", "a", "--v=b,c"}, want: []string{"a", "b", "c"}},
		{name: "comma list trims and drops empties", comma: true, args: []string{"--v", " a , ,b,", "--v="}, want: []string{"a", "b"}},
		{name: "comma list keeps duplicates", comma: true, args: []string{"--v", "a,a"}, want: []string{"a", "a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			l := List[string]{Comma: tc.comma}
			fs.Var(&l, "v", "values")
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(l.Values, tc.want) {
				t.Errorf("Values = %q, want %q", l.Values, tc.want)
			}
			if got := fs.Lookup("v").Value.(flag.Getter).Get(); !reflect.DeepEqual(got, l.Values) {
				t.Errorf("Get() = %q, want %q", got, l.Values)
			}
		})
	}
}

// A list of a string type holds values of that type, for callers that want them typed.
func TestListOfAStringType(t *testing.T) {
	var l List[corev1.ResourceName]
	for _, v := range []string{"nvidia.com/gpu", "nvidia.com/mig-1g.10gb"} {
		if err := l.Set(v); err != nil {
			t.Fatal(err)
		}
	}
	want := []corev1.ResourceName{"nvidia.com/gpu", "nvidia.com/mig-1g.10gb"}
	if !reflect.DeepEqual(l.Values, want) {
		t.Errorf("Values = %q, want %q", l.Values, want)
	}
	if got := l.String(); got != "nvidia.com/gpu,nvidia.com/mig-1g.10gb" {
		t.Errorf("String() = %q", got)
	}
}

// The help text shows no default for an empty list, as for other flags left at their zero.
func TestListHasNoDefaultInHelp(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var out strings.Builder
	fs.SetOutput(&out)
	fs.Var(&List[string]{}, "v", "values (repeatable)")
	fs.PrintDefaults()
	if got, want := out.String(), "  -v value\n    \tvalues (repeatable)\n"; got != want {
		t.Errorf("help = %q, want %q", got, want)
	}
	var nilList *List[string]
	if nilList.String() != "" {
		t.Error("a nil list's String is not empty")
	}
}
