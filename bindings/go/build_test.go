package ringbuffer

// Tests of how the package builds: the core copies, the module zip, the Go
// version go.mod claims.

import (
	"bufio"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

const modulePath = "github.com/mmap-ringbuffer/mmap_ringbuffer/bindings/go"

// The checked-in copies of the core must equal what sync_core.sh makes from
// ../../core (skipped outside the repository, e.g. in a module download).
func TestCoreCopiesInSync(t *testing.T) {
	if _, err := os.Stat("../../core/include/mrb/mrb.h"); err != nil {
		t.Skip("no ../../core here:", err)
	}
	out, err := exec.Command("sh", "sync_core.sh", "--check").CombinedOutput()
	if err != nil {
		t.Fatalf("sync_core.sh --check: %v\n%s", err, out)
	}
}

func goCommand(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		t.Skip("no go command:", err)
	}
	return p
}

// copyAsModuleZip copies the module in dir to dst the way a module zip
// carries it: regular files only (symlinks are dropped), no nested modules,
// nothing from outside dir.
func copyAsModuleZip(t *testing.T, dir, dst string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() {
			if rel != "." {
				if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
					return filepath.SkipDir
				}
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		src, err := os.Open(path)
		if err != nil {
			return err
		}
		defer src.Close()
		out, err := os.Create(filepath.Join(dst, rel))
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, src); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
}

const consumerProgram = `package main

import (
	"fmt"
	"os"

	ringbuffer "` + modulePath + `"
)

func main() {
	rb, err := ringbuffer.NewRingBuffer(os.Args[1], 4096, true)
	if err != nil {
		panic(err)
	}
	defer rb.Close()
	if _, err := rb.WriteMsg([]byte("built from the module alone")); err != nil {
		panic(err)
	}
	msg, err := rb.ReadMsg()
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s, capacity %d\n", msg, rb.Capacity())
}
`

// A user who fetches the module gets only this directory, as a zip: it must
// build (cgo compiling the core copies) and work with nothing else.
func TestModuleZipBuild(t *testing.T) {
	goCmd := goCommand(t)
	work := t.TempDir()
	module := filepath.Join(work, "module")
	copyAsModuleZip(t, ".", module)

	consumer := filepath.Join(work, "consumer")
	if err := os.Mkdir(consumer, 0o755); err != nil {
		t.Fatal(err)
	}
	goMod := "module example.com/consumer\n\ngo 1.21\n\n" +
		"require " + modulePath + " v0.0.0-00010101000000-000000000000\n\n" +
		"replace " + modulePath + " => ../module\n"
	for name, content := range map[string]string{"go.mod": goMod, "main.go": consumerProgram} {
		if err := os.WriteFile(filepath.Join(consumer, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(goCmd, "run", ".", filepath.Join(work, "ring.mrb"))
	cmd.Dir = consumer
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off",
		"GOTOOLCHAIN=local", "CGO_ENABLED=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go run in a consumer module: %v\n%s", err, out)
	}
	if got, want := string(out), "built from the module alone, capacity 4096\n"; got != want {
		t.Fatalf("consumer printed %q, want %q", got, want)
	}
}

// go.mod claims a minimum Go version. The compiler enforces the language
// version; this checks the package uses no standard-library function,
// variable, constant or type added after it, using the API lists of the Go
// installation ($GOROOT/api/go1.N.txt). Methods are not checked.
func TestGoVersionClaim(t *testing.T) {
	claimed := claimedGoMinor(t)
	out, err := exec.Command(goCommand(t), "env", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	apiDir := filepath.Join(strings.TrimSpace(string(out)), "api")
	newer := map[string]string{} // "pkg.Name" -> version that added it
	entry := regexp.MustCompile(`^pkg ([^ ,]+)(?: \([^)]*\))?, (func|var|const|type) ([A-Za-z0-9_]+)(.*)$`)
	issueRef := regexp.MustCompile(` #\d+$`)
	typeParams := regexp.MustCompile(`\[[^\]]*\]`)
	for minor := claimed + 1; ; minor++ {
		version := "go1." + strconv.Itoa(minor)
		f, err := os.Open(filepath.Join(apiDir, version+".txt"))
		if os.IsNotExist(err) {
			if minor == claimed+1 {
				t.Skip("no API lists in", apiDir)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		scanner := bufio.NewScanner(f)
		for scanner.Scan() {
			line := issueRef.ReplaceAllString(scanner.Text(), "")
			m := entry.FindStringSubmatch(line)
			if m == nil || strings.Contains(line, "//deprecated") {
				continue
			}
			// "type T struct, Field" and "type T interface, Method" add
			// members to a type, they do not add the type.
			if m[2] == "type" && strings.Contains(typeParams.ReplaceAllString(m[4], ""), ", ") {
				continue
			}
			if _, seen := newer[m[1]+"."+m[3]]; !seen {
				newer[m[1]+"."+m[3]] = version
			}
		}
		f.Close()
	}

	files, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	for _, name := range files {
		file, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		imports := map[string]string{} // local name -> import path
		for _, spec := range file.Imports {
			path, _ := strconv.Unquote(spec.Path.Value)
			local := path[strings.LastIndex(path, "/")+1:]
			if spec.Name != nil {
				local = spec.Name.Name
			}
			imports[local] = path
		}
		ast.Inspect(file, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if pkg, ok := sel.X.(*ast.Ident); ok {
				if path, ok := imports[pkg.Name]; ok {
					if version, ok := newer[path+"."+sel.Sel.Name]; ok {
						t.Errorf("%s: %s.%s needs %s, go.mod claims go1.%d",
							fset.Position(sel.Pos()), path, sel.Sel.Name, version, claimed)
					}
				}
			}
			return true
		})
	}
}

func claimedGoMinor(t *testing.T) int {
	data, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go 1\.(\d+)`).FindSubmatch(data)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	minor, _ := strconv.Atoi(string(m[1]))
	return minor
}

// Without cgo the package cannot work; a user's build must fail with one
// line saying so, not with an "undefined" error at every use.
func TestBuildWithoutCgoSaysWhy(t *testing.T) {
	goCmd := goCommand(t)
	work := t.TempDir()
	module := filepath.Join(work, "module")
	copyAsModuleZip(t, ".", module)
	consumer := filepath.Join(work, "consumer")
	if err := os.Mkdir(consumer, 0o755); err != nil {
		t.Fatal(err)
	}
	goMod := "module example.com/consumer\n\ngo 1.21\n\n" +
		"require " + modulePath + " v0.0.0-00010101000000-000000000000\n\n" +
		"replace " + modulePath + " => ../module\n"
	for name, content := range map[string]string{"go.mod": goMod, "main.go": consumerProgram} {
		if err := os.WriteFile(filepath.Join(consumer, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(goCmd, "build", "-o", os.DevNull, ".")
	cmd.Dir = consumer
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off",
		"GOTOOLCHAIN=local", "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("go build with CGO_ENABLED=0 succeeded:\n%s", out)
	}
	var errorLines []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !strings.HasPrefix(line, "#") {
			errorLines = append(errorLines, line)
		}
	}
	if len(errorLines) != 1 || !strings.Contains(errorLines[0], `"ringbuffer needs cgo: set CGO_ENABLED=1, have a C compiler"`) {
		t.Fatalf("go build with CGO_ENABLED=0 said:\n%s", out)
	}
}
