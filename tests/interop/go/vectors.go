package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	ringbuffer "github.com/mmap-ringbuffer/mmap_ringbuffer/bindings/go"
)

// vectorDescription is a tests/vectors/NAME.json file.
type vectorDescription struct {
	File      string   `json:"file"`
	Capacity  int      `json:"capacity"`
	OpenError *string  `json:"open_error"`
	Messages  []string `json:"messages"`
}

// checkVectors opens a copy of every golden vector in dir (reading moves the
// consumer position, so the committed file is never opened) and reads
// exactly the described messages, or expects ErrVersion.
func checkVectors(dir string) error {
	names, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(names) == 0 {
		return fmt.Errorf("no vectors in %s", dir)
	}
	sort.Strings(names)
	scratch, err := os.MkdirTemp("", "go-vectors")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	var failed []string
	for _, name := range names {
		vector := strings.TrimSuffix(filepath.Base(name), ".json")
		if err := checkVector(name, scratch); err != nil {
			fmt.Fprintf(os.Stderr, "go vectors: %s: %v\n", vector, err)
			failed = append(failed, vector)
			continue
		}
		fmt.Printf("go vectors: %s OK\n", vector)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%w: vectors %s", errMismatch, strings.Join(failed, ", "))
	}
	return nil
}

func checkVector(descriptionPath, scratch string) error {
	text, err := os.ReadFile(descriptionPath)
	if err != nil {
		return err
	}
	var d vectorDescription
	if err := json.Unmarshal(text, &d); err != nil {
		return err
	}
	ringBytes, err := os.ReadFile(filepath.Join(filepath.Dir(descriptionPath), d.File))
	if err != nil {
		return err
	}
	copyPath := filepath.Join(scratch, d.File)
	if err := os.WriteFile(copyPath, ringBytes, 0o600); err != nil {
		return err
	}
	ring, err := ringbuffer.OpenRingBuffer(copyPath)
	if d.OpenError != nil {
		if *d.OpenError != "version" {
			return fmt.Errorf("unsupported open_error %q", *d.OpenError)
		}
		if err == nil {
			ring.Close()
		}
		if !errors.Is(err, ringbuffer.ErrVersion) {
			return fmt.Errorf("open gave %v, want ErrVersion", err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	defer ring.Close()
	if ring.Capacity() != d.Capacity {
		return fmt.Errorf("capacity %d, want %d", ring.Capacity(), d.Capacity)
	}
	for i, encoded := range d.Messages {
		want, err := hex.DecodeString(encoded)
		if err != nil {
			return err
		}
		got, err := ring.ReadMsg()
		if err != nil {
			return fmt.Errorf("message %d: %v", i, err)
		}
		if string(got) != string(want) {
			return fmt.Errorf("message %d: got %x, want %x", i, got, want)
		}
	}
	if extra, err := ring.ReadMsg(); err != ringbuffer.ErrBufferEmpty {
		return fmt.Errorf("%d messages expected, then got %d bytes, %v", len(d.Messages), len(extra), err)
	}
	return nil
}
