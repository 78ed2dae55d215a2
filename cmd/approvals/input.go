package main

import (
	"fmt"
	"io"
	"os"
)

// readInput reads file, or stdin when file is "-"; what names the input in
// the error.
func readInput(file string, stdin io.Reader, what string) ([]byte, error) {
	var b []byte
	var err error
	if file == "-" {
		b, err = io.ReadAll(stdin)
	} else {
		b, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	return b, nil
}
