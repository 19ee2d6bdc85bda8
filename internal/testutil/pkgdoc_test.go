package testutil

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackageDocs requires a package comment in every package of the
// module, so each directory says what it is for (STYLE.md, doc.go).
func TestPackageDocs(t *testing.T) {
	root := filepath.Join("..", "..")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found: %v", err)
	}
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "peers" || name == "papers") {
			return filepath.SkipDir // other modules, data, tools
		}
		// package name -> documented, over the directory's non-test files
		docs := map[string]bool{}
		ents, err := os.ReadDir(path)
		if err != nil {
			return err
		}
		for _, e := range ents {
			fn := e.Name()
			if e.IsDir() || !strings.HasSuffix(fn, ".go") || strings.HasSuffix(fn, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(path, fn), nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				return err
			}
			pname := f.Name.Name
			documented := f.Doc != nil && (pname == "main" || strings.HasPrefix(f.Doc.Text(), "Package "+pname+" "))
			docs[pname] = docs[pname] || documented
		}
		for pname, documented := range docs {
			checked++
			if !documented {
				t.Errorf("package %s in %s has no package comment (\"Package %s ...\")", pname, path, pname)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 5 {
		t.Fatalf("checked only %d packages: is the walk rooted right?", checked)
	}
}
