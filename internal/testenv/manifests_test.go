package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadManifests(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a.yaml", "---\nkind: ConfigMap\nmetadata: {name: one}\n---\n# nothing\n---\nkind: Secret\nmetadata: {name: two}\n")
	write("b.yaml", `{"kind": "Service", "metadata": {"name": "three"}}`)
	write("bad.txt", "kind: [unclosed\n")
	for _, tc := range []struct {
		pattern string
		want    []string // kind/name
		wantErr string
	}{
		{pattern: filepath.Join(dir, "*.yaml"), want: []string{"ConfigMap/one", "Secret/two", "Service/three"}},
		{pattern: filepath.Join(dir, "b.yaml"), want: []string{"Service/three"}},
		{pattern: filepath.Join(dir, "*.json"), wantErr: "no file matches"},
		{pattern: filepath.Join(dir, "bad.txt"), wantErr: "decoding " + filepath.Join(dir, "bad.txt")},
		{pattern: filepath.Join("config", "rbac", "role.yaml"), want: []string{"ClusterRole/elastic-jupyter-controller", "Role/elastic-jupyter-controller"}},
	} {
		t.Run(filepath.Base(tc.pattern), func(t *testing.T) {
			objs, err := ReadManifests(tc.pattern)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, u := range objs {
				got = append(got, u.GetKind()+"/"+u.GetName())
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("read %q, want %q", got, tc.want)
			}
		})
	}
}
