package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/sfn-approvals/sfn-approvals/link"
)

func TestKeygenOutputParses(t *testing.T) {
	var a, b bytes.Buffer
	if err := keygen(context.Background(), nil, &a, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := keygen(context.Background(), nil, &b, io.Discard); err != nil {
		t.Fatal(err)
	}
	ka, kb := strings.TrimSpace(a.String()), strings.TrimSpace(b.String())
	if ka == kb {
		t.Fatal("two keys are equal")
	}
	kr, err := link.ParseKeyring(ka + "," + kb)
	if err != nil {
		t.Fatalf("keygen output does not parse as a keyring: %v", err)
	}
	if len(kr.KeyIDs()) != 2 {
		t.Errorf("ids = %v", kr.KeyIDs())
	}
}
