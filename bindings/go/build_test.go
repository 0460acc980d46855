package ringbuffer

// Tests of how the package builds: the generated core, the module zip, the
// Go version go.mod claims.

import (
	"archive/zip"
	"bufio"
	"debug/elf"
	"go/ast"
	"go/parser"
	"go/token"
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

// The checked-in mrb.h and core_amalgamation.c must equal what gen_core.go
// makes from ../../core (skipped outside the repository, e.g. in a module
// download).
func TestCoreGenerated(t *testing.T) {
	if _, err := os.Stat("../../core/sources.bzl"); err != nil {
		t.Skip("no ../../core here:", err)
	}
	cmd := exec.Command(goCommand(t), "run", "gen_core.go", "-check")
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run gen_core.go -check: %v\n%s", err, out)
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

// writeModuleProxy publishes the module in dir as version in a GOPROXY
// directory (file:// protocol: @v/list, .info, .mod, .zip) and returns the
// proxy's root. The zip follows the go command's rules: every regular file
// under dir, at modulePath@version/, except nested modules, vendor and VCS
// directories; symlinks are dropped. The go command checks the zip again
// when it extracts it.
func writeModuleProxy(t *testing.T, dir, version string) string {
	t.Helper()
	proxy := t.TempDir()
	at := filepath.Join(proxy, filepath.FromSlash(modulePath), "@v")
	if err := os.MkdirAll(at, 0o755); err != nil {
		t.Fatal(err)
	}
	zf, err := os.Create(filepath.Join(at, version+".zip"))
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(zf)
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() {
			switch d.Name() {
			case "vendor", ".git", ".hg", ".svn", ".bzr":
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		w, err := zw.Create(modulePath + "@" + version + "/" + filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	})
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = zf.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	goMod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"list":            version + "\n",
		version + ".info": `{"Version":"` + version + `","Time":"2026-01-01T00:00:00Z"}`,
		version + ".mod":  string(goMod),
	} {
		if err := os.WriteFile(filepath.Join(at, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return proxy
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

// A user who fetches the module gets only this directory, as a zip from a
// module proxy: the go command must download, verify and extract it, and
// build (cgo compiling the generated core) and run a program with nothing
// else, in a directory outside the repository.
func TestModuleZipBuild(t *testing.T) {
	goCmd := goCommand(t)
	const version = "v0.1.0"
	proxy := writeModuleProxy(t, ".", version)
	work := t.TempDir()
	consumer := filepath.Join(work, "consumer")
	if err := os.Mkdir(consumer, 0o755); err != nil {
		t.Fatal(err)
	}
	goMod := "module example.com/consumer\n\ngo 1.21\n\nrequire " + modulePath + " " + version + "\n"
	for name, content := range map[string]string{"go.mod": goMod, "main.go": consumerProgram} {
		if err := os.WriteFile(filepath.Join(consumer, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	exe := filepath.Join(work, "consumer.exe")
	env := append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=file://"+proxy,
		"GOSUMDB=off", "GOMODCACHE="+filepath.Join(work, "modcache"), "GOWORK=off",
		"GOTOOLCHAIN=local", "CGO_ENABLED=1")
	cmd := exec.Command(goCmd, "build", "-modcacherw", "-o", exe, ".")
	cmd.Dir = consumer
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build in a consumer module: %v\n%s", err, out)
	}
	out, err := exec.Command(exe, filepath.Join(work, "ring.mrb")).CombinedOutput()
	if err != nil {
		t.Fatalf("consumer: %v\n%s", err, out)
	}
	if got, want := string(out), "built from the module alone, capacity 4096\n"; got != want {
		t.Fatalf("consumer printed %q, want %q", got, want)
	}
	checkShippedSymbols(t, exe)

	// The same program as a shared object (-buildmode=c-shared, as a C
	// program would load Go code): the C core stays private to it.
	lib := filepath.Join(work, "consumer.so")
	cmd = exec.Command(goCmd, "build", "-modcacherw", "-buildmode=c-shared", "-o", lib, ".")
	cmd.Dir = consumer
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build -buildmode=c-shared: %v\n%s", err, out)
	}
	checkShippedSymbols(t, lib)
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
	const version = "v0.1.0"
	proxy := writeModuleProxy(t, ".", version)
	work := t.TempDir()
	consumer := filepath.Join(work, "consumer")
	if err := os.Mkdir(consumer, 0o755); err != nil {
		t.Fatal(err)
	}
	goMod := "module example.com/consumer\n\ngo 1.21\n\nrequire " + modulePath + " " + version + "\n"
	for name, content := range map[string]string{"go.mod": goMod, "main.go": consumerProgram} {
		if err := os.WriteFile(filepath.Join(consumer, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(goCmd, "build", "-modcacherw", "-o", os.DevNull, ".")
	cmd.Dir = consumer
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=file://"+proxy,
		"GOSUMDB=off", "GOMODCACHE="+filepath.Join(work, "modcache"), "GOWORK=off",
		"GOTOOLCHAIN=local", "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("go build with CGO_ENABLED=0 succeeded:\n%s", out)
	}
	var errorLines []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "go: downloading ") {
			errorLines = append(errorLines, line)
		}
	}
	if len(errorLines) != 1 || !strings.Contains(errorLines[0], `"ringbuffer needs cgo: set CGO_ENABLED=1, have a C compiler"`) {
		t.Fatalf("go build with CGO_ENABLED=0 said:\n%s", out)
	}
}

// checkShippedSymbols checks the C linked into the Go program or shared
// object exe is the shipped core only: no test hook (mrb__test_*,
// core/src/testing.c) at all, and no C symbol of the core exported from the
// dynamic symbol table (core.go compiles it with -fvisibility=hidden).
func checkShippedSymbols(t *testing.T, exe string) {
	t.Helper()
	f, err := elf.Open(exe)
	if err != nil {
		t.Skip("not an ELF binary:", err)
	}
	defer f.Close()
	symbols, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, s := range symbols {
		found[s.Name] = true
		if strings.HasPrefix(s.Name, "mrb__test_") {
			t.Errorf("test-only symbol %s linked into %s", s.Name, exe)
		}
	}
	// The core is there, or this checks nothing.
	for _, name := range []string{"mrb_write", "mrb_read_len", "mrb_write_packed"} {
		if !found[name] {
			t.Errorf("core symbol %s missing from %s", name, exe)
		}
	}
	dynamic, err := f.DynamicSymbols()
	if err != nil && err != elf.ErrNoSymbols {
		t.Fatal(err)
	}
	for _, s := range dynamic {
		if s.Section != elf.SHN_UNDEF && strings.HasPrefix(s.Name, "mrb") {
			t.Errorf("C symbol %s exported from %s", s.Name, exe)
		}
	}
}

// gen_core.go makes one translation unit of sources that each compile
// alone: a static function of one source and a static variable of another
// with the same name, used as a callback and a value, and a macro of one
// source defined again by the next.
func TestGenCoreKeepsSourcesApart(t *testing.T) {
	goCmd := goCommand(t)
	core, out := t.TempDir(), t.TempDir()
	files := map[string]string{
		"include/mrb/mrb.h": "int mrb_a(void);\nint mrb_b(void);\n",
		"sources.bzl":       "MRB_SRCS = [\n    \"src/a.c\",\n    \"src/b.c\",\n]\n",
		"src/h.h":           "#ifndef H_H\n#define H_H\nstruct s {\n\tint (*fn)(int);\n};\n#endif\n",
		"src/a.c": "#include \"mrb/mrb.h\"\n#include \"h.h\"\n#define LIMIT 1\n" +
			"static int helper(int x)\n{\n\treturn x + LIMIT;\n}\n" +
			"int mrb_a(void)\n{\n\tstruct s v = {helper};\n\treturn v.fn(1);\n}\n",
		"src/b.c": "#include \"mrb/mrb.h\"\n#include \"h.h\"\n#define LIMIT 2\n" +
			"static int helper = LIMIT;\n" +
			"int mrb_b(void)\n{\n\treturn helper;\n}\n",
	}
	for name, content := range files {
		path := filepath.Join(core, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gen := exec.Command(goCmd, "run", "gen_core.go", "-core", core, "-out", out)
	gen.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
	if msg, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("gen_core: %v\n%s", err, msg)
	}
	cc := exec.Command("cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-c",
		"core_amalgamation.c", "-o", "core.o")
	cc.Dir = out
	if msg, err := cc.CombinedOutput(); err != nil {
		amalgamation, _ := os.ReadFile(filepath.Join(out, "core_amalgamation.c"))
		t.Fatalf("cc: %v\n%s\n%s", err, msg, amalgamation)
	}
}
