package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
)

// ReadManifests decodes every YAML (or JSON) document of the files pattern matches
// (filepath.Glob; a relative pattern is taken from the repository's root), in order, leaving
// out empty documents. A pattern that matches no file is an error, and so is a document that
// does not decode.
func ReadManifests(pattern string) ([]*unstructured.Unstructured, error) {
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(RepoRoot(), pattern)
	}
	files, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("reading manifests %s: %w", pattern, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("reading manifests: no file matches %s", pattern)
	}
	var objs []*unstructured.Unstructured
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading manifests: %w", err)
		}
		dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return nil, fmt.Errorf("decoding %s: %w", f, err)
			}
			if len(u.Object) > 0 {
				objs = append(objs, u)
			}
		}
	}
	return objs, nil
}
