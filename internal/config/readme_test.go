package config

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestREADMEDocumentsEveryVariable holds the README's configuration table to
// the variables the program actually reads, in both directions.
func TestREADMEDocumentsEveryVariable(t *testing.T) {
	t.Parallel()

	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatalf("failed to read README.md: %v", err)
	}
	rows := regexp.MustCompile("(?m)^\\| `([A-Z][A-Z0-9_]+)` \\| (.*?) \\|").FindAllStringSubmatch(string(b), -1)
	documented := map[string]string{}
	for _, r := range rows {
		documented[r[1]] = r[2]
	}
	known := map[string]bool{}
	for _, v := range Variables() {
		known[v.Name] = true
		def, ok := documented[v.Name]
		if !ok {
			t.Errorf("README.md configuration table lacks %s", v.Name)
			continue
		}
		want := "—"
		if v.Default != "" {
			want = "`" + v.Default + "`"
		}
		if def != want {
			t.Errorf("README.md gives %s the default %s, the program uses %s", v.Name, def, want)
		}
	}
	for name := range documented {
		if !known[name] {
			t.Errorf("README.md documents %s, which the program does not read", name)
		}
	}
}
