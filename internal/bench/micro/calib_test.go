package micro

import (
	"crypto/sha256"
	"encoding/base64"
	"testing"
)

// Reference operations, so figures from different machines can be compared:
// a current x86 server core hashes (SHA-NI) and base64-encodes at well over
// 1 GB/s. Per-email costs scale with these.
var calibBuf = make([]byte, 4096)

func BenchmarkCalibrateSHA256(b *testing.B) {
	b.SetBytes(int64(len(calibBuf)))
	for b.Loop() {
		sha256.Sum256(calibBuf)
	}
}

func BenchmarkCalibrateBase64(b *testing.B) {
	dst := make([]byte, base64.StdEncoding.EncodedLen(len(calibBuf)))
	b.SetBytes(int64(len(calibBuf)))
	for b.Loop() {
		base64.StdEncoding.Encode(dst, calibBuf)
	}
}
